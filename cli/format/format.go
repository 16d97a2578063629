// Package format renders what berth's ls, ps and inspect commands print when --format
// asks for something else than their own table, as Docker's --format does: a Go
// template per row ("{{.Name}}"), a table of chosen columns with their headers
// ("table {{.ID}}\t{{.Name}}"), one JSON object per row with the display fields
// ("json"), or a template over an inspected object ("{{.Spec.Image}}").
package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

// Kind is what a --format value asks for.
type Kind int

const (
	// Default is no --format, or "table": the command's own output.
	Default Kind = iota
	// JSON is "json": one JSON object per row, or the inspected objects.
	JSON
	// Table is "table TEMPLATE": the template's columns under their headers.
	Table
	// Template is any other value: the template once per row or object.
	Template
)

const (
	jsonKey  = "json"
	tableKey = "table"
)

// Format is a parsed --format value.
type Format struct {
	kind Kind
	// text is the template with "table" cut off and \t, \n made tabs and newlines,
	// as a shell user types them inside single quotes.
	text   string
	cells  *template.Template
	header *template.Template
}

// Parse reads a --format value; a template that does not parse is an error that
// says where.
func Parse(s string) (Format, error) {
	trimmed := strings.TrimSpace(s)
	switch {
	case trimmed == "" || trimmed == tableKey:
		return Format{kind: Default}, nil
	case trimmed == jsonKey:
		return Format{kind: JSON}, nil
	}
	f := Format{kind: Template, text: trimmed}
	if rest, ok := strings.CutPrefix(trimmed, tableKey+" "); ok {
		f.kind, f.text = Table, strings.TrimSpace(rest)
	}
	f.text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(f.text)
	var err error
	if f.cells, err = template.New("").Option("missingkey=error").Funcs(funcs).Parse(f.text); err != nil {
		return Format{}, fmt.Errorf("invalid --format %q: %w; write json, a Go template such as '{{.Name}}', or 'table {{.ID}}\\t{{.Name}}'", s, err)
	}
	if f.kind == Table {
		// The cells parsed, and the header functions take the same names.
		f.header = template.Must(template.New("").Option("missingkey=error").Funcs(headerFuncs).Parse(f.text))
	}
	return f, nil
}

// Kind says what the value asks for.
func (f Format) Kind() Kind { return f.kind }

// Column is one field of a listing's rows: its name in templates and JSON, and the
// header a table gives it.
type Column struct {
	Field, Header string
}

// Row is one object of a listing, its display fields by name.
type Row map[string]any

// ErrDefault is returned when a Default format is asked to render rows: the command
// prints its own table then.
var ErrDefault = errors.New("the default format is the command's own table")

// WriteRows writes the rows of a listing whose fields are cols.
func (f Format) WriteRows(w io.Writer, cols []Column, rows []Row) error {
	switch f.kind {
	case Default:
		return ErrDefault
	case JSON:
		return writeJSONRows(w, rows)
	case Table:
		return f.writeTable(w, cols, rows)
	}
	for _, r := range rows {
		if err := f.execute(w, f.cells, cols, r); err != nil {
			return err
		}
	}
	return nil
}

func writeJSONRows(w io.Writer, rows []Row) error {
	for _, r := range rows {
		line, err := jsonText(r)
		if err != nil {
			return fmt.Errorf("encoding JSON: %w", err)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

func (f Format) writeTable(w io.Writer, cols []Column, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := Row{}
	for _, c := range cols {
		header[c.Field] = c.Header
	}
	if err := f.execute(tw, f.header, cols, header); err != nil {
		return err
	}
	for _, r := range rows {
		if err := f.execute(tw, f.cells, cols, r); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// execute writes one row and its newline, or nothing when the template fails on it:
// the error names the fields there are.
func (f Format) execute(w io.Writer, t *template.Template, cols []Column, r Row) error {
	var b bytes.Buffer
	if err := t.Execute(&b, r); err != nil {
		fields := make([]string, len(cols))
		for i, c := range cols {
			fields[i] = "." + c.Field
		}
		return fmt.Errorf("--format: %w (the fields are %s)", err, strings.Join(fields, ", "))
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// WriteObject writes the template's view of one inspected object and a newline. The
// template sees v's Go fields ({{.Spec.Image}}) or, when those do not have what it
// asks for, v's JSON form ({{.spec.image}}), as `docker inspect` falls back to the
// raw JSON.
func (f Format) WriteObject(w io.Writer, v any) error {
	if f.kind != Template {
		return fmt.Errorf("--format %q applies to lists only: use a template or json", tableKey+" "+f.text)
	}
	var b bytes.Buffer
	err := f.cells.Execute(&b, v)
	if err != nil {
		b.Reset()
		if raw, ok := jsonForm(v); !ok || f.cells.Execute(&b, raw) != nil {
			return fmt.Errorf("--format: %w (the fields are those of the JSON that the command prints without --format)", err)
		}
	}
	b.WriteByte('\n')
	_, err = w.Write(b.Bytes())
	return err
}

// jsonForm is v decoded from its JSON into maps and slices.
func jsonForm(v any) (any, bool) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var raw any
	return raw, json.Unmarshal(data, &raw) == nil
}
