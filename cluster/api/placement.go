package api

import "fmt"

// Lines describe the service's placement for people, one line each: every new task
// and its node (at most max of them, then how many more), the tasks that stop, those
// that cannot be placed and why, and how the update would end when it does not
// complete. The CLI's plan and the output of a git push print them.
func (sp *ServicePlacement) Lines(max int) []string {
	var out []string
	for i, t := range sp.Tasks {
		if i == max {
			out = append(out, fmt.Sprintf("... and %s (-o json lists every one)", Plural(len(sp.Tasks)-i, "other task", "other tasks")))
			break
		}
		name := sp.Service
		if t.Slot > 0 {
			name = fmt.Sprintf("%s.%d", sp.Service, t.Slot)
		}
		switch {
		case t.From != "":
			out = append(out, fmt.Sprintf("%s -> %s (moves from %s)", name, t.Node, t.From))
		case t.Replaces:
			out = append(out, fmt.Sprintf("%s -> %s (replaces the running task)", name, t.Node))
		default:
			out = append(out, fmt.Sprintf("%s -> %s (new)", name, t.Node))
		}
	}
	if sp.Stopped > 0 {
		out = append(out, Plural(sp.Stopped, "task", "tasks")+" stop")
	}
	for _, u := range sp.Unplaced {
		out = append(out, fmt.Sprintf("! %s cannot be placed: %s", Plural(u.Count, "task", "tasks"), u.Reason))
	}
	if sp.Update != "" {
		out = append(out, "! the rolling update would end "+sp.Update)
	}
	return out
}

// Plural is "1 task", "2 tasks".
func Plural(n int, single, multi string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, single)
	}
	return fmt.Sprintf("%d %s", n, multi)
}
