package rewrite

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"appliance/internal/httpx"
)

// filePath is a source path of a _redirects or _headers rule, in the
// syntax Netlify and Cloudflare Pages share: literal segments
// (percent-encoded as in a URL), ":name" placeholders that each match one
// whole segment, and one "*" splat at the end that matches the rest
// (":splat"). It matches in any letter case and with or without a
// trailing slash: "/news/*" matches "/news", "/news/" and "/news/a/b".
type filePath struct {
	expr   string   // the RE2 expression, case-insensitive and anchored
	static string   // a path without placeholders or splat: its key (see pathKey); else ""
	prefix string   // the literal every match starts with, lower case
	names  []string // the captures, in order ("splat" for the splat)
}

// compileFilePath compiles a rule's source path.
func compileFilePath(src string) (filePath, error) {
	var fp filePath
	if err := checkFilePathForm(src); err != nil {
		return fp, err
	}
	body, splat := strings.CutSuffix(src, "*")
	if strings.ContainsRune(body, '*') {
		return fp, fmt.Errorf("path %q: a splat (*) may only end the path", src)
	}
	segs, decoded, err := parseFilePathSegments(src, body)
	if err != nil {
		return fp, err
	}
	if err := checkCanonicalFilePath(src, body, decoded); err != nil {
		return fp, err
	}
	for _, s := range segs {
		if s.name != "" {
			fp.names = append(fp.names, s.name)
		}
	}
	dynamic := splat || len(fp.names) > 0
	trailing := len(segs) > 1 && segs[len(segs)-1] == pathSeg{}
	if trailing {
		segs = segs[:len(segs)-1] // "/news/" matches as "/news"
	}
	fp.expr, fp.prefix = filePathExpr(segs, splat, trailing)
	if splat {
		fp.names = append(fp.names, "splat")
	}
	if !dynamic {
		fp.static = pathKey(decoded)
	}
	return fp, nil
}

// checkFilePathForm refuses a source path that is not a path: a whole
// URL, a relative path, a query or a fragment.
func checkFilePathForm(src string) error {
	switch {
	case strings.Contains(src, "://"):
		return fmt.Errorf("path %q: rules for a whole URL (a host) are not supported; give a path, and a [[site]] of its own to another host", src)
	case !strings.HasPrefix(src, "/"):
		return fmt.Errorf("path %q must start with /", src)
	case strings.ContainsRune(src, '?'):
		return fmt.Errorf("path %q: matching query parameters is not supported", src)
	case strings.ContainsRune(src, '#'):
		return fmt.Errorf("path %q: a fragment never reaches the server", src)
	}
	return nil
}

// A pathSeg is a segment of a source path: a literal (decoded) or a
// placeholder name.
type pathSeg struct{ lit, name string }

// parseFilePathSegments splits body, the source path src without its
// splat, into segments; decoded is the path with every placeholder
// filled (with "x").
func parseFilePathSegments(src, body string) (segs []pathSeg, decoded string, err error) {
	var names []string
	var sample strings.Builder // the path with every placeholder filled
	for _, s := range strings.Split(body[1:], "/") {
		sample.WriteString("/")
		if name, ok := strings.CutPrefix(s, ":"); ok {
			if err := checkPlaceholder(src, s, name, names); err != nil {
				return nil, "", err
			}
			names = append(names, name)
			segs = append(segs, pathSeg{name: name})
			sample.WriteString("x")
			continue
		}
		dec, err := decodeLiteralSegment(src, s)
		if err != nil {
			return nil, "", err
		}
		segs = append(segs, pathSeg{lit: dec})
		sample.WriteString(dec)
	}
	return segs, sample.String(), nil
}

// checkPlaceholder refuses the placeholder segment s (":name") of src
// when name is not a name, is "splat", or is among the names before it.
func checkPlaceholder(src, s, name string, names []string) error {
	switch {
	case !isName(name):
		return fmt.Errorf("path %q: placeholder %q: want a name of letters, digits and _", src, s)
	case name == "splat":
		return fmt.Errorf("path %q: :splat is the name of what * matches, not a placeholder", src)
	case slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) }):
		return fmt.Errorf("path %q: placeholder :%s appears twice", src, name)
	}
	return nil
}

// decodeLiteralSegment decodes the literal segment s of src, refusing a
// placeholder within it.
func decodeLiteralSegment(src, s string) (string, error) {
	if i := strings.IndexByte(s, ':'); i >= 0 && nameLen(s[i+1:]) > 0 {
		return "", fmt.Errorf("path %q: a placeholder must be a whole segment (/:name/)", src)
	}
	dec, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("path %q: invalid percent-encoding", src)
	}
	return dec, nil
}

// checkCanonicalFilePath refuses src when decoded, its decoded form, has
// other segments than body (an encoded slash) or is not canonical.
func checkCanonicalFilePath(src, body, decoded string) error {
	if strings.Count(decoded, "/") != strings.Count(body, "/") {
		return fmt.Errorf("path %q: an encoded slash (%%2F) is not a segment of a canonical path", src)
	}
	if c, status := httpx.CleanPath(decoded); status != 0 || c != decoded {
		return fmt.Errorf("path %q is not in canonical form (no empty, \".\" or \"..\" segments, no backslash)", src)
	}
	return nil
}

// filePathExpr returns the RE2 expression that matches segs, then the
// splat if any, and the literal every match starts with, in lower case.
func filePathExpr(segs []pathSeg, splat, trailing bool) (expr, prefix string) {
	var re, lit strings.Builder
	re.WriteString("(?i)^")
	literal := true // still in the literal prefix
	for _, s := range segs {
		re.WriteString("/")
		if s.name != "" {
			fmt.Fprintf(&re, "(?P<%s>[^/]+)", s.name)
			literal = false
			continue
		}
		re.WriteString(regexp.QuoteMeta(s.lit))
		if literal {
			lit.WriteString("/" + s.lit)
		}
	}
	switch {
	case splat && trailing:
		re.WriteString("(?:/(?P<splat>.*))?$")
	case splat:
		re.WriteString("(?P<splat>.*)$")
	default:
		re.WriteString("/?$")
	}
	return re.String(), asciiLower(lit.String())
}

// pathKey is the form under which a static rule is found: lower case,
// without a trailing slash ("/" stays "/").
func pathKey(p string) string {
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return asciiLower(p)
}

// asciiLower lower-cases ASCII letters only, so that byte offsets stay
// those of s.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// hasLowerPrefix reports whether s starts with prefix, which is lower
// case, ignoring the case of ASCII letters in s: the prefilter of file
// rules, byte by byte, so that a hundred rules that do not match cost
// little more than a hundred byte comparisons.
func hasLowerPrefix(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

func isName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// nameLen returns the length of the placeholder name at the start of s
// (letters, digits and _, not starting with a digit), 0 if none.
func nameLen(s string) int {
	n := 0
	for n < len(s) && (s[n] >= 'a' && s[n] <= 'z' || s[n] >= 'A' && s[n] <= 'Z' || s[n] == '_' || n > 0 && s[n] >= '0' && s[n] <= '9') {
		n++
	}
	return n
}
