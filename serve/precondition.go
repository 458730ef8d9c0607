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

// validators are what preconditions are evaluated against.
type validators struct {
	ETag    string    // the selected representation's strong tag; "" if none
	ModTime time.Time // Last-Modified, whole seconds; zero if unknown
	// Tags of every current representation of the resource (its content
	// codings), ETag among them: a client holding any of them holds the
	// current content, so If-None-Match compares against all of them.
	Current []string
}

// checkPreconditions evaluates the conditional request headers in the
// order of RFC 9110 section 13.2.2 and returns 0 (proceed),
// 304 Not Modified or 412 Precondition Failed. For 304 it also returns
// the current tag the client presented, which the response must carry.
func checkPreconditions(method string, h http.Header, v validators) (int, string) {
	ch := checkIfMatch(h["If-Match"], v)
	if ch == condNone {
		ch = checkIfUnmodifiedSince(h["If-Unmodified-Since"], v.ModTime)
	}
	if ch == condFalse {
		return http.StatusPreconditionFailed, ""
	}
	safe := method == http.MethodGet || method == http.MethodHead
	switch ch, tag := checkIfNoneMatch(h["If-None-Match"], v); ch {
	case condFalse:
		if safe {
			return http.StatusNotModified, tag
		}
		return http.StatusPreconditionFailed, ""
	case condNone:
		if safe && checkIfModifiedSince(h["If-Modified-Since"], v.ModTime) == condFalse {
			return http.StatusNotModified, v.ETag
		}
	}
	return 0, ""
}

// checkIfMatch implements RFC 9110 section 13.1.1 (strong comparison).
func checkIfMatch(values []string, v validators) condResult {
	if len(values) == 0 {
		return condNone
	}
	for _, s := range values {
		if _, ok := matchETagList(s, v, false); ok {
			return condTrue
		}
	}
	return condFalse
}

// checkIfNoneMatch implements RFC 9110 section 13.1.2 (weak comparison):
// false means a listed tag matches, so the condition fails; the matching
// current tag is returned.
func checkIfNoneMatch(values []string, v validators) (condResult, string) {
	if len(values) == 0 {
		return condNone, ""
	}
	for _, s := range values {
		if tag, ok := matchETagList(s, v, true); ok {
			return condFalse, tag
		}
	}
	return condTrue, ""
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
func checkIfRange(values []string, v validators) condResult {
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
// "*") matches a current tag of v, with weak or strong comparison (RFC
// 9110 8.8.3.2), and which. An empty v.ETag means no current
// representation, which "*" does not match.
func matchETagList(list string, v validators, weak bool) (string, bool) {
	if v.ETag == "" {
		return "", false
	}
	for {
		list = strings.TrimLeft(list, " \t,")
		if list == "" {
			return "", false
		}
		if list[0] == '*' {
			return v.ETag, true
		}
		tag, rest := scanETag(list)
		if tag == "" {
			return "", false // malformed: nothing after it can be trusted
		}
		if matches(tag, v.ETag, weak) {
			return v.ETag, true
		}
		for _, cur := range v.Current {
			if matches(tag, cur, weak) {
				return cur, true
			}
		}
		list = rest
	}
}

func matches(a, b string, weak bool) bool {
	if weak {
		return weakMatch(a, b)
	}
	return strongMatch(a, b)
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
	return a == b && a != "" && a[0] == '"' // W/ tags never match strongly
}

func weakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}
