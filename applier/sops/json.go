package sops

import (
	"bytes"
	"encoding/json"

	"gopkg.in/yaml.v3"
)

// writeJSON writes a decrypted document back as JSON, in its order, indented as sops
// indents it.
func writeJSON(buf *bytes.Buffer, n *yaml.Node, indent string) {
	inner := indent + "\t"
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		open, close, step := byte('{'), byte('}'), 2
		if n.Kind == yaml.SequenceNode {
			open, close, step = '[', ']', 1
		}
		buf.WriteByte(open)
		for i := 0; i < len(n.Content); i += step {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString("\n" + inner)
			if step == 2 {
				writeString(buf, n.Content[i].Value)
				buf.WriteString(": ")
			}
			writeJSON(buf, n.Content[i+step-1], inner)
		}
		if len(n.Content) > 0 {
			buf.WriteString("\n" + indent)
		}
		buf.WriteByte(close)
	default:
		switch n.Tag {
		case "!!int", "!!float", "!!bool":
			buf.WriteString(n.Value)
		case "!!null":
			buf.WriteString("null")
		default:
			writeString(buf, n.Value)
		}
	}
}

func writeString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	buf.Write(b)
}
