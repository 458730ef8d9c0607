package rewrite

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// fileHeaders is one path block of _headers: the header lines under it,
// in order.
type fileHeaders struct {
	path   *pattern
	prefix string // lower-case literal every match starts with
	ops    []headerOp
}

// headerOp sets a field (a second value of the same name in one block
// joins the first with ", ") or, with detach, removes it ("! Name",
// Cloudflare's syntax).
type headerOp struct {
	name, value string
	detach      bool
}

func (fh *fileHeaders) matches(p string) bool {
	return hasLowerPrefix(p, fh.prefix) && fh.path.matches(p)
}

// parseHeaders compiles a _headers file: a path line (not indented), then
// indented "Name: value" or "! Name" lines; "#" starts a comment line.
// Errors carry the line: "name:12: message".
func parseHeaders(name string, data []byte) ([]*fileHeaders, []error) {
	var (
		out []*fileHeaders
		cur *fileHeaders // the block header lines go to; nil after a bad path
		bad bool         // the current path line was refused: skip its lines quietly
	)
	errs := eachLine(name, data, maxHeaderLine, func(line []byte, fail failFunc) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			return
		}
		if line[0] != ' ' && line[0] != '\t' {
			cur, bad = nil, true
			if strings.ContainsAny(s, " \t") {
				fail("a path line holds one path (indent the header lines under it)")
				return
			}
			if len(out) == maxHeaderRules {
				fail("more than %d paths", maxHeaderRules)
				return
			}
			fp, err := compileFilePath(s)
			if err != nil {
				fail("%v", err)
				return
			}
			p, err := compilePattern(fp.expr)
			if err != nil {
				fail("%v", err)
				return
			}
			cur, bad = &fileHeaders{path: p, prefix: fp.prefix}, false
			out = append(out, cur)
			return
		}
		if cur == nil {
			if !bad {
				fail("a header line before any path")
			}
			return
		}
		if len(cur.ops) == maxHeaderLinesPerRule {
			fail("more than %d header lines under one path", maxHeaderLinesPerRule)
			return
		}
		op, err := parseHeaderLine(s)
		if err != nil {
			fail("%v", err)
			return
		}
		if !op.detach {
			for i := range cur.ops {
				if o := &cur.ops[i]; !o.detach && o.name == op.name && op.name != "Set-Cookie" {
					o.value += ", " + op.value
					return
				}
			}
		}
		cur.ops = append(cur.ops, op)
	})
	return out, errs
}

func parseHeaderLine(s string) (headerOp, error) {
	if name, ok := strings.CutPrefix(s, "!"); ok {
		name = strings.TrimSpace(name)
		if !httpguts.ValidHeaderFieldName(name) {
			return headerOp{}, fmt.Errorf("! %s: want a header name to remove", name)
		}
		return headerOp{name: http.CanonicalHeaderKey(name), detach: true}, nil
	}
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return headerOp{}, fmt.Errorf("want Name: value, or ! Name to remove a header")
	}
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !httpguts.ValidHeaderFieldName(name):
		return headerOp{}, fmt.Errorf("invalid header name %q", name)
	case !httpguts.ValidHeaderFieldValue(value):
		return headerOp{}, fmt.Errorf("header %s: invalid value", name)
	case strings.EqualFold(name, "Basic-Auth"):
		return headerOp{}, fmt.Errorf("Basic-Auth is not supported: protect the path with [[site.auth]] in the configuration")
	}
	if err := checkField(name, value); err != nil {
		return headerOp{}, err
	}
	switch k := http.CanonicalHeaderKey(name); k {
	case "Keep-Alive", "Upgrade", "Proxy-Connection", "Te", "Trailer":
		return headerOp{}, fmt.Errorf("header %s is the connection's, not a response's", k)
	}
	return headerOp{name: http.CanonicalHeaderKey(name), value: value}, nil
}

// applyFileHeaders applies the matching blocks of _headers, in file
// order, to h: a field one block sets replaces the server's; a later
// block setting it again joins its value with ", "; "! Name" removes it.
func applyFileHeaders(h http.Header, rules []*fileHeaders) {
	var set []string // names the file has set so far
	for _, fh := range rules {
		for _, op := range fh.ops {
			switch _, have := h[op.name]; {
			case op.detach:
				delete(h, op.name)
			case have && op.name == "Set-Cookie" && slices.Contains(set, op.name):
				v := h[op.name]
				h[op.name] = append(v[:len(v):len(v)], op.value)
			case have && slices.Contains(set, op.name):
				h[op.name] = []string{h[op.name][0] + ", " + op.value}
			default:
				h[op.name] = []string{op.value}
				set = append(set, op.name)
			}
		}
	}
}
