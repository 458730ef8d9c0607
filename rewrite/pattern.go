package rewrite

import (
	"fmt"
	"regexp"
	"strings"
)

// pattern is a compiled RE2 expression with a cheap literal prefilter, so
// that fifty rules that do not match cost little more than fifty string
// comparisons.
type pattern struct {
	re       *regexp.Regexp
	prefix   string // a literal every match starts with
	anchored bool   // the expression starts with ^: the prefix starts the path
}

func compilePattern(expr string) (*pattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %v", expr, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	p := &pattern{re: re, anchored: strings.HasPrefix(expr, "^")}
	p.prefix, _ = re.LiteralPrefix()
	return p, nil
}

// match returns the submatch indexes of s, or nil.
func (p *pattern) match(s string) []int {
	if p.prefix != "" {
		if p.anchored && !strings.HasPrefix(s, p.prefix) || !p.anchored && !strings.Contains(s, p.prefix) {
			return nil
		}
	}
	return p.re.FindStringSubmatchIndex(s)
}

func (p *pattern) matches(s string) bool {
	if p.prefix != "" {
		if p.anchored && !strings.HasPrefix(s, p.prefix) || !p.anchored && !strings.Contains(s, p.prefix) {
			return false
		}
	}
	return p.re.MatchString(s)
}

// globPattern compiles a path glob: "**" matches across segments, "*"
// and "?" within one.
func globPattern(glob string) (*pattern, error) {
	if !strings.HasPrefix(glob, "/") {
		return nil, fmt.Errorf("invalid path glob %q: must start with /", glob)
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; {
		case c == '*' && i+1 < len(glob) && glob[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return compilePattern(b.String())
}

// template is a target with $1, ${1} and ${name} references to captures;
// $$ is a literal dollar.
type template struct {
	parts []tpart
	raw   string
}

type tpart struct {
	lit   string
	group int // > 0: a capture; the literal is empty
}

func compileTemplate(s string, p *pattern) (*template, error) {
	t := &template{raw: s}
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			t.parts = append(t.parts, tpart{lit: s[i:]})
			break
		}
		if j > 0 {
			t.parts = append(t.parts, tpart{lit: s[i : i+j]})
		}
		i += j + 1
		if i >= len(s) {
			return nil, fmt.Errorf("target %q ends with a lone $", s)
		}
		var ref string
		switch {
		case s[i] == '$':
			t.parts = append(t.parts, tpart{lit: "$"})
			i++
			continue
		case s[i] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("target %q: unclosed ${", s)
			}
			ref, i = s[i+1:i+end], i+end+1
		case s[i] >= '0' && s[i] <= '9':
			k := i
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				k++
			}
			ref, i = s[i:k], k
		default:
			return nil, fmt.Errorf("target %q: $ must be followed by a group number or {name} ($$ for a dollar)", s)
		}
		g := -1
		if n, err := parseGroup(ref); err == nil {
			g = n
		} else {
			g = p.re.SubexpIndex(ref)
		}
		if g < 1 || g > p.re.NumSubexp() {
			return nil, fmt.Errorf("target %q refers to $%s, which the pattern %q does not capture", s, ref, p.re.String())
		}
		t.parts = append(t.parts, tpart{group: g})
	}
	return t, nil
}

func parseGroup(s string) (int, error) {
	n := 0
	if s == "" {
		return 0, fmt.Errorf("empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a number")
		}
		n = n*10 + int(c-'0')
		if n > 1000 {
			return 0, fmt.Errorf("too large")
		}
	}
	return n, nil
}

// expand fills the template from a match of src. Captured text is
// percent-encoded, so it can add neither a scheme, an authority, a query
// nor a fragment the rule did not write.
func (t *template) expand(src string, m []int) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.group == 0 {
			b.WriteString(p.lit)
			continue
		}
		if s, e := m[2*p.group], m[2*p.group+1]; s >= 0 {
			escapeCapture(&b, src[s:e])
		}
	}
	return b.String()
}

// expandRewrite expands an internal rewrite's target: captures go into
// the path as they are, since it is a decoded path like the one they came
// from, and into the query (after the template's first "?")
// percent-encoded.
func (t *template) expandRewrite(src string, m []int) (p, query string, hasQuery bool) {
	var b strings.Builder
	for _, part := range t.parts {
		if part.group == 0 {
			lit := part.lit
			if i := strings.IndexByte(lit, '?'); i >= 0 && !hasQuery {
				b.WriteString(lit[:i])
				p, hasQuery, lit = b.String(), true, lit[i+1:]
				b.Reset()
			}
			b.WriteString(lit)
			continue
		}
		if s, e := m[2*part.group], m[2*part.group+1]; s >= 0 {
			if hasQuery {
				escapeCapture(&b, src[s:e])
			} else {
				b.WriteString(src[s:e])
			}
		}
	}
	if hasQuery {
		return p, b.String(), true
	}
	return b.String(), "", false
}

// escapeCapture writes s with everything but unreserved characters, "/"
// and a few harmless sub-delimiters percent-encoded.
func escapeCapture(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/', c == '!', c == '\'', c == '(', c == ')',
			c == '*', c == ',', c == ';', c == '=', c == ':', c == '@', c == '+':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
}
