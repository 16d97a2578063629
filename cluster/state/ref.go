package state

import "strings"

// LookupRef finds the object a user named by ID, by name, or by a unique ID prefix, as
// Docker does. It returns the object and how many matched: 1 found, 0 none, more than 1
// an ambiguous prefix (the caller words the error for its own kind of object).
func LookupRef[T any](ref string, byID, byName func(string) (T, error), all func() ([]T, error), id func(T) string) (T, int, error) {
	var zero T
	if o, err := byID(ref); err == nil {
		return o, 1, nil
	}
	if o, err := byName(ref); err == nil {
		return o, 1, nil
	}
	objects, err := all()
	if err != nil {
		return zero, 0, err
	}
	var match T
	n := 0
	for _, o := range objects {
		if strings.HasPrefix(id(o), ref) {
			match, n = o, n+1
		}
	}
	if n != 1 {
		return zero, n, nil
	}
	return match, 1, nil
}
