package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"
)

// funcs are the functions a --format template may call, Docker's set: scripts
// written for `docker service ls --format` run unchanged.
var funcs = template.FuncMap{
	"json":     jsonText,
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    titleWords,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      pad,
	"truncate": truncate,
	"println":  fmt.Sprintln,
}

// headerFuncs stand in for funcs while a table's header row is rendered: the
// header is the column's name, whatever the cell does to its value.
var headerFuncs = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v string, _ string) string { return v },
	"join":     func(v string, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"pad":      func(v string, _, _ int) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

// jsonText is v as one line of JSON, without HTML escaping (a script reads it, not a
// browser).
func jsonText(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// titleWords upper-cases the first letter of each word.
func titleWords(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		up := unicode.IsSpace(prev)
		prev = r
		if up {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

func pad(s string, before, after int) string {
	return strings.Repeat(" ", max(before, 0)) + s + strings.Repeat(" ", max(after, 0))
}

// truncate keeps the first n characters of s.
func truncate(s string, n int) string {
	if n < 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// Ellipsis cuts s to at most n characters, the last of them "…", as Docker cuts the
// ERROR column of `service ps`.
func Ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:max(n, 0)])
	}
	return string(r[:n-1]) + "…"
}
