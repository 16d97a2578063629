package format

import (
	"bytes"
	"strings"
	"testing"
)

var (
	testCols = []Column{{Field: "ID", Header: "ID"}, {Field: "Name", Header: "NAME"}, {Field: "DesiredState", Header: "DESIRED STATE"}}
	testRows = []Row{
		{"ID": "abc", "Name": "web_api", "DesiredState": "Running"},
		{"ID": "defghi", "Name": "web_db", "DesiredState": "Shutdown"},
	}
)

func TestWriteRows(t *testing.T) {
	tests := []struct {
		name, format, want string
	}{
		{"template per row", "{{.Name}}", "web_api\nweb_db\n"},
		{"escaped tab and newline", `{{.ID}}\t{{.Name}}\n`, "abc\tweb_api\n\ndefghi\tweb_db\n\n"},
		{"table with Docker's headers", `table {{.ID}}\t{{.DesiredState}}`,
			"ID       DESIRED STATE\nabc      Running\ndefghi   Shutdown\n"},
		{"header ignores functions", `table {{.Name | upper}}`, "NAME\nWEB_API\nWEB_DB\n"},
		{"json, one object per row", "json",
			`{"DesiredState":"Running","ID":"abc","Name":"web_api"}` + "\n" + `{"DesiredState":"Shutdown","ID":"defghi","Name":"web_db"}` + "\n"},
		{"json function", `{{json .Name}}`, "\"web_api\"\n\"web_db\"\n"},
		{"lower title join split", `{{lower .DesiredState}} {{title "a b"}} {{join (split .Name "_") "-"}}`,
			"running A B web-api\nshutdown A B web-db\n"},
		{"truncate and pad", `{{truncate .Name 3}}|{{pad .ID 1 2}}|`, "web| abc  |\nweb| defghi  |\n"},
		{"println", `{{println .ID}}`, "abc\n\ndefghi\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := f.WriteRows(&b, testCols, testRows); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}

func TestParseKinds(t *testing.T) {
	tests := []struct {
		format string
		want   Kind
	}{
		{"", Default}, {"table", Default}, {" table ", Default}, {"json", JSON},
		{"table {{.ID}}", Table}, {"{{.ID}}", Template},
	}
	for _, tt := range tests {
		f, err := Parse(tt.format)
		if err != nil || f.Kind() != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want kind %v", tt.format, f.Kind(), err, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	if _, err := Parse("{{.Name"); err == nil || !strings.Contains(err.Error(), `invalid --format "{{.Name"`) {
		t.Errorf("unclosed action: %v", err)
	}
	f, err := Parse("{{.Nope}}")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err = f.WriteRows(&b, testCols, testRows)
	if err == nil || !strings.Contains(err.Error(), `"Nope"`) || !strings.Contains(err.Error(), "the fields are .ID, .Name, .DesiredState") {
		t.Errorf("unknown field: %v", err)
	}
	if b.Len() != 0 {
		t.Errorf("a failed row wrote %q", b.String())
	}
	if err := (Format{}).WriteRows(&b, testCols, testRows); err != ErrDefault {
		t.Errorf("default format: %v", err)
	}
}

type inspected struct {
	Name string            `json:"name"`
	Spec map[string]string `json:"spec"`
}

func TestWriteObject(t *testing.T) {
	v := inspected{Name: "web", Spec: map[string]string{"image": "nginx"}}
	tests := []struct{ format, want string }{
		{"{{.Name}}", "web\n"},
		{"{{.Spec.image}}", "nginx\n"},
		{"{{.name}} {{.spec.image}}", "web nginx\n"}, // the JSON form's keys
		{"{{json .Spec}}", `{"image":"nginx"}` + "\n"},
	}
	for _, tt := range tests {
		f, err := Parse(tt.format)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := f.WriteObject(&b, v); err != nil || b.String() != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.format, b.String(), err, tt.want)
		}
	}
	f, _ := Parse("{{.Missing}}")
	if err := f.WriteObject(&bytes.Buffer{}, v); err == nil || !strings.Contains(err.Error(), "Missing") {
		t.Errorf("missing field: %v", err)
	}
	f, _ = Parse("table {{.Name}}")
	if err := f.WriteObject(&bytes.Buffer{}, v); err == nil {
		t.Error("a table format on one object: no error")
	}
}

func TestEllipsis(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 30, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven ch…"},
		{"ünïcödé text", 5, "ünïc…"},
		{"no room", 1, "n"},
	}
	for _, tt := range tests {
		if got := Ellipsis(tt.s, tt.n); got != tt.want {
			t.Errorf("Ellipsis(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
