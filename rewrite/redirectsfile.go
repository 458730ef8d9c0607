package rewrite

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Bounds of the site rules files, Cloudflare Pages' numbers where it has
// them. A file over a bound is refused whole, as any other error.
const (
	maxRulesFileBytes     = 1 << 20 // bytes of _redirects or _headers
	maxRedirectLine       = 1000    // bytes of a _redirects line
	maxStaticRedirects    = 2000    // rules without placeholders or splat (found by one map lookup)
	maxDynamicRedirects   = 100     // rules with them (each tried in turn)
	maxHeaderLine         = 2000    // bytes of a _headers line
	maxHeaderRules        = 100     // path blocks in _headers
	maxHeaderLinesPerRule = 100     // header lines under one path
)

// fileRule is one line of _redirects: a redirect (3xx) or a rewrite
// served with its status (200, 404, 410).
type fileRule struct {
	status   int
	prefix   string // lower-case literal every match starts with
	redirect *Redirect
	rewrite  *Rewrite
}

func (fr *fileRule) from() *pattern {
	if fr.redirect != nil {
		return fr.redirect.from
	}
	return fr.rewrite.from
}

func (fr *fileRule) cond() *cond {
	if fr.redirect != nil {
		return &fr.redirect.cond
	}
	return &fr.rewrite.cond
}

// redirectsTable is a compiled _redirects file. Rules apply in file
// order, the first that matches wins; static rules are found by their
// path, so two thousand of them cost one map lookup.
type redirectsTable struct {
	rules   []fileRule
	static  map[string][]int32 // pathKey -> indexes into rules, ascending
	dynamic []int32            // indexes into rules, ascending
}

// parseRedirects compiles a _redirects file. name prefixes the errors,
// which carry the line: "name:12: message". hosts are the site's names,
// for the redirect loop check.
func parseRedirects(name string, data []byte, hosts []string) (*redirectsTable, []error) {
	t := &redirectsTable{static: map[string][]int32{}}
	nstatic := 0
	errs := eachLine(name, data, maxRedirectLine, func(line []byte, fail failFunc) {
		fields := strings.Fields(string(line))
		for i, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:i]
				break
			}
		}
		if len(fields) == 0 {
			return
		}
		fr, static, err := compileFileRule(fields, hosts)
		if err != nil {
			fail("%v", err)
			return
		}
		idx := int32(len(t.rules))
		if static != "" {
			if nstatic++; nstatic > maxStaticRedirects {
				fail("more than %d rules without placeholders or splat", maxStaticRedirects)
				return
			}
			t.static[static] = append(t.static[static], idx)
		} else {
			if len(t.dynamic) == maxDynamicRedirects {
				fail("more than %d rules with placeholders or a splat", maxDynamicRedirects)
				return
			}
			t.dynamic = append(t.dynamic, idx)
		}
		t.rules = append(t.rules, fr)
	})
	return t, errs
}

// failFunc records an error at the line being parsed.
type failFunc func(format string, a ...any)

// eachLine calls fn with each line of data, a rules file called name,
// without the line ending (LF or CRLF) and a leading byte-order mark,
// and a fail that records an error as "name:12: message". A line longer
// than maxLine is an error fn does not see, and a file over
// maxRulesFileBytes one error with no line read. It returns the errors.
func eachLine(name string, data []byte, maxLine int, fn func(line []byte, fail failFunc)) []error {
	if len(data) > maxRulesFileBytes {
		return []error{fmt.Errorf("%s: larger than %d bytes", name, maxRulesFileBytes)}
	}
	var errs []error
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for n := 1; len(data) > 0; n++ {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		line, data = bytes.TrimSuffix(line, []byte("\r")), rest
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, n, fmt.Sprintf(format, a...)))
		}
		if len(line) > maxLine {
			fail("line longer than %d bytes", maxLine)
			continue
		}
		fn(line, fail)
	}
	return errs
}

// compileFileRule compiles the fields of one rule: from, to, then an
// optional status with an optional "!" (force). It returns the rule and,
// for a static one, its path key.
func compileFileRule(fields []string, hosts []string) (fileRule, string, error) {
	var fr fileRule
	if len(fields) < 2 {
		return fr, "", fmt.Errorf("want: from to [status][!]")
	}
	if strings.Contains(fields[1], "=") && !strings.Contains(fields[1], "/") {
		return fr, "", fmt.Errorf("matching query parameters (%s) is not supported", fields[1])
	}
	from, to, rest := fields[0], fields[1], fields[2:]
	fr.status = http.StatusMovedPermanently
	force := false
	if len(rest) > 0 && !strings.Contains(rest[0], "=") {
		code, bang := strings.CutSuffix(rest[0], "!")
		n, err := strconv.Atoi(code)
		if err != nil || len(code) != 3 {
			return fr, "", fmt.Errorf("invalid status %q: want a code such as 301, or 200! to force", rest[0])
		}
		fr.status, force, rest = n, bang, rest[1:]
	}
	if len(rest) > 0 {
		if strings.Contains(rest[0], "=") {
			return fr, "", fmt.Errorf("conditions (%s) are not supported", rest[0])
		}
		return fr, "", fmt.Errorf("unexpected %q after the status", rest[0])
	}
	fp, err := compileFilePath(from)
	if err != nil {
		return fr, "", err
	}
	fr.prefix = fp.prefix
	// Shadowing: a rule not forced does not apply where a file exists.
	c := Cond{IfMissing: !force}
	switch fr.status {
	case 301, 302, 303, 307, 308:
		tmpl, err := fileTarget(to, fp.names, false)
		if err != nil {
			return fr, "", err
		}
		fr.redirect, err = NewRedirect(fp.expr, tmpl, fr.status, c, hosts)
		if err != nil {
			return fr, "", redirectError(err, from, to)
		}
	case 200, 404, 410:
		tmpl, err := fileTarget(to, fp.names, true)
		if err != nil {
			return fr, "", err
		}
		if fr.rewrite, err = NewRewrite(fp.expr, tmpl, true, c); err != nil {
			return fr, "", err
		}
	default:
		return fr, "", fmt.Errorf("status %d: want 301, 302, 303, 307, 308 (redirects), 200 (rewrite), 404 or 410", fr.status)
	}
	return fr, fp.static, nil
}

// redirectError restates an error of NewRedirect, which speaks of the
// RE2 pattern, in the file's own terms.
func redirectError(err error, from, to string) error {
	if strings.Contains(err.Error(), "loops") {
		return fmt.Errorf("redirect %s -> %s loops: the target matches the path (add no ! to let an existing file shadow it)", from, to)
	}
	return err
}

// fileTarget turns a rule's target into a template of package rewrite:
// ":name" becomes ${name} for each placeholder (and :splat) of the path,
// "$" is escaped. A rewrite's target path is decoded, as the paths the
// rules see are; a redirect's stays a URL.
func fileTarget(to string, names []string, rewrite bool) (string, error) {
	if err := checkTargetForm(to, rewrite); err != nil {
		return "", err
	}
	pathEnd := strings.IndexByte(to, '?')
	if pathEnd < 0 {
		pathEnd = len(to)
	}
	var b strings.Builder
	for i := 0; i < len(to); {
		c := to[i]
		switch {
		case c <= ' ' || c >= 0x7f:
			return "", fmt.Errorf("target %q: write other characters than visible ASCII percent-encoded", to)
		case c == ':' && nameLen(to[i+1:]) > 0:
			n := nameLen(to[i+1:])
			name, err := targetPlaceholder(to, to[i+1:i+1+n], names)
			if err != nil {
				return "", err
			}
			b.WriteString("${" + name + "}")
			i += 1 + n
		case c == '$':
			b.WriteString("$$")
			i++
		case c == '%' && rewrite && i < pathEnd:
			dec, err := decodeTargetEscape(to, i)
			if err != nil {
				return "", err
			}
			b.WriteString(dec)
			i += 3
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// checkTargetForm refuses a target that is neither a path nor an http(s)
// URL, a rewrite's to another server, and a fragment.
func checkTargetForm(to string, rewrite bool) error {
	abs := strings.HasPrefix(to, "https://") || strings.HasPrefix(to, "http://")
	switch {
	case rewrite && abs:
		return fmt.Errorf("target %q: serving another server's content (proxying) is not supported; redirect with 301, 302, 307 or 308", to)
	case !abs && (!strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//")):
		return fmt.Errorf("target %q: want a path starting with / or an http(s) URL", to)
	case strings.ContainsRune(to, '#'):
		return fmt.Errorf("target %q: fragments (#) are not supported", to)
	}
	return nil
}

// targetPlaceholder returns the placeholder of the path, among names,
// that :name in the target to stands for, in the path's spelling (the
// last one that matches in any letter case).
func targetPlaceholder(to, name string, names []string) (string, error) {
	k := -1
	for j, have := range names {
		if strings.EqualFold(have, name) {
			k = j
		}
	}
	if k < 0 {
		return "", fmt.Errorf("target %q: :%s is not a placeholder of the path (a literal colon is %%3A)", to, name)
	}
	return names[k], nil
}

// decodeTargetEscape decodes the percent-encoded byte at to[i] of a
// rewrite's target path, for a template: "$" escaped, "?" and NUL
// refused.
func decodeTargetEscape(to string, i int) (string, error) {
	v, err := strconv.ParseUint(to[i+1:min(i+3, len(to))], 16, 8)
	if err != nil || i+3 > len(to) {
		return "", fmt.Errorf("target %q: invalid percent-encoding", to)
	}
	switch v {
	case '$':
		return "$$", nil
	case '?', 0:
		return "", fmt.Errorf("target %q: %%%02X cannot be part of a path", to, v)
	}
	return string([]byte{byte(v)}), nil
}
