package spec

import "context"

// Checked is a stack that Load checked in this process. Its one field is unexported,
// so no other package can make a Checked and no decoder (JSON or other) can fill one:
// holding a non-zero Checked proves this binary ran every check of Validate on the
// stack, and a manager in the same process need not run them again. A stack that
// came from a client never is one.
type Checked struct{ stack *Stack }

// Stack is the checked stack, nil for the zero Checked. Whoever holds a Checked must
// not change the stack, or the proof no longer holds.
func (c Checked) Stack() *Stack { return c.stack }

// LoadChecked is Load for a caller that hands the stack on to a manager in the same
// process (the applier's syncs): the result says that the stack was checked.
func LoadChecked(ctx context.Context, opts LoadOptions) (Checked, []Warning, error) {
	st, warnings, err := Load(ctx, opts)
	return Checked{st}, warnings, err
}
