package serve

import (
	"net/http"
	"strings"
	"time"
)

// condResult is the outcome of one precondition: absent (or ignored),
// true or false. Booleans would lie about "header absent".
type condResult int

const (
	condNone condResult = iota
	condTrue
	condFalse
)

// Validators are what preconditions are evaluated against.
type Validators struct {
	ETag    string    // strong entity tag including quotes; "" if none
	ModTime time.Time // Last-Modified, whole seconds; zero if unknown
}

// checkPreconditions evaluates the conditional request headers in the
// order of RFC 9110 section 13.2.2 and returns 0 (proceed),
// 304 Not Modified or 412 Precondition Failed.
func checkPreconditions(method string, h http.Header, v Validators) int {
	ch := checkIfMatch(h["If-Match"], v.ETag)
	if ch == condNone {
		ch = checkIfUnmodifiedSince(h["If-Unmodified-Since"], v.ModTime)
	}
	if ch == condFalse {
		return http.StatusPreconditionFailed
	}
	safe := method == http.MethodGet || method == http.MethodHead
	switch checkIfNoneMatch(h["If-None-Match"], v.ETag) {
	case condFalse:
		if safe {
			return http.StatusNotModified
		}
		return http.StatusPreconditionFailed
	case condNone:
		if safe && checkIfModifiedSince(h["If-Modified-Since"], v.ModTime) == condFalse {
			return http.StatusNotModified
		}
	}
	return 0
}

// checkIfMatch implements RFC 9110 section 13.1.1 (strong comparison).
func checkIfMatch(values []string, etag string) condResult {
	if len(values) == 0 {
		return condNone
	}
	for _, v := range values {
		if matchETagList(v, etag, false) {
			return condTrue
		}
	}
	return condFalse
}

// checkIfNoneMatch implements RFC 9110 section 13.1.2 (weak comparison):
// false means a listed tag matches, so the condition fails.
func checkIfNoneMatch(values []string, etag string) condResult {
	if len(values) == 0 {
		return condNone
	}
	for _, v := range values {
		if matchETagList(v, etag, true) {
			return condFalse
		}
	}
	return condTrue
}

// checkIfModifiedSince implements RFC 9110 section 13.1.3. Invalid dates,
// several members and an unknown modification time make it absent.
func checkIfModifiedSince(values []string, modtime time.Time) condResult {
	t, ok := singleDate(values)
	if !ok || modtime.IsZero() {
		return condNone
	}
	if !modtime.After(t) {
		return condFalse
	}
	return condTrue
}

// checkIfUnmodifiedSince implements RFC 9110 section 13.1.4.
func checkIfUnmodifiedSince(values []string, modtime time.Time) condResult {
	t, ok := singleDate(values)
	if !ok || modtime.IsZero() {
		return condNone
	}
	if modtime.After(t) {
		return condFalse
	}
	return condTrue
}

// checkIfRange implements RFC 9110 section 13.1.5: an entity tag must match
// strongly, a date must equal Last-Modified exactly.
func checkIfRange(values []string, v Validators) condResult {
	if len(values) == 0 {
		return condNone
	}
	if len(values) > 1 {
		return condFalse
	}
	s := strings.TrimSpace(values[0])
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "W/") {
		tag, rest := scanETag(s)
		if tag == "" || strings.TrimSpace(rest) != "" || !strongMatch(tag, v.ETag) {
			return condFalse
		}
		return condTrue
	}
	t, err := http.ParseTime(s)
	if err != nil || v.ModTime.IsZero() || !t.Equal(v.ModTime) {
		return condFalse
	}
	return condTrue
}

// singleDate parses a header that must hold exactly one HTTP-date.
func singleDate(values []string) (time.Time, bool) {
	if len(values) != 1 {
		return time.Time{}, false
	}
	t, err := http.ParseTime(strings.TrimSpace(values[0]))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// matchETagList reports whether the field value (a list of entity tags, or
// "*") matches etag, with weak or strong comparison (RFC 9110 8.8.3.2).
// An empty etag means no current representation, which "*" does not match.
func matchETagList(list, etag string, weak bool) bool {
	if etag == "" {
		return false
	}
	for {
		list = strings.TrimLeft(list, " \t,")
		if list == "" {
			return false
		}
		if list[0] == '*' {
			return true
		}
		tag, rest := scanETag(list)
		if tag == "" {
			return false // malformed: nothing after it can be trusted
		}
		if weak && weakMatch(tag, etag) || !weak && strongMatch(tag, etag) {
			return true
		}
		list = rest
	}
}

// scanETag splits one entity-tag (RFC 9110 8.8.3) off the front of s.
// It returns "" if s does not start with a valid one.
func scanETag(s string) (tag, rest string) {
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s[start:]) < 2 || s[start] != '"' {
		return "", ""
	}
	for i := start + 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return s[:i+1], s[i+1:]
		case c == 0x21 || c >= 0x23 && c <= 0x7E || c >= 0x80: // etagc
		default:
			return "", ""
		}
	}
	return "", ""
}

func strongMatch(a, b string) bool {
	return a == b && a != "" && a[0] == '"'
}

func weakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}
