package serve

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// reprDigestOf is the Repr-Digest field value of a representation whose
// bytes hash to sum, SHA-256 (RFC 9530 section 3): a Structured Fields
// dictionary with one byte sequence.
func reprDigestOf(sum []byte) string {
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum) + ":"
}

// sendDigest reports whether a response to r carries Repr-Digest: when
// the client asks for sha-256 with a nonzero preference in
// Want-Repr-Digest (RFC 9530 section 4), or, when the site sends it by
// default (on), unless the client gives sha-256 preference 0 ("not
// acceptable"). A malformed field is ignored, as Structured Fields
// require.
func sendDigest(r *http.Request, on bool) bool {
	want := r.Header["Want-Repr-Digest"]
	if len(want) == 0 {
		return on
	}
	pref, named := wantSHA256(want)
	if !named {
		return on
	}
	return pref > 0
}

// wantSHA256 returns the preference (0 to 10) Want-Repr-Digest gives
// sha-256, and whether it names it at all. The field is a Structured
// Fields dictionary of integers (RFC 9530 section 4, RFC 8941 section
// 3.2); its lines are one list. A member that is not a key with an
// integer from 0 to 10 (parameters allowed and ignored) makes the whole
// field invalid, and then it names nothing. A key given twice counts
// with its last value.
func wantSHA256(lines []string) (pref int, named bool) {
	for _, line := range lines {
		for member := range strings.SplitSeq(line, ",") {
			key, value, ok := parseDictInteger(strings.Trim(member, " \t"))
			if !ok || value < 0 || value > 10 {
				return 0, false
			}
			if key == "sha-256" {
				pref, named = value, true
			}
		}
	}
	return pref, named
}

// parseDictInteger parses one dictionary member, key=integer with
// optional parameters (RFC 8941 sections 3.2 and 3.1.2); a bare key
// (the value true) is not an integer and fails.
func parseDictInteger(m string) (key string, value int, ok bool) {
	n := keyLen(m)
	if n == 0 || n == len(m) || m[n] != '=' {
		return "", 0, false
	}
	key, rest := m[:n], m[n+1:]
	i := 0
	if i < len(rest) && rest[i] == '-' {
		i++
	}
	start := i
	for i < len(rest) && i-start < 15 && rest[i] >= '0' && rest[i] <= '9' {
		value = value*10 + int(rest[i]-'0')
		i++
	}
	if i == start {
		return "", 0, false
	}
	if start == 1 {
		value = -value
	}
	rest = rest[i:]
	for rest != "" { // parameters: *( ";" *SP key [ "=" bare-item ] )
		if rest[0] != ';' {
			return "", 0, false
		}
		rest = strings.TrimLeft(rest[1:], " ")
		n := keyLen(rest)
		if n == 0 {
			return "", 0, false
		}
		rest = rest[n:]
		if rest != "" && rest[0] == '=' {
			end := strings.IndexByte(rest, ';')
			if end < 0 {
				end = len(rest)
			}
			if end == 1 || strings.ContainsAny(rest[1:end], " \t\"") {
				return "", 0, false // no value, or one this field cannot have
			}
			rest = rest[end:]
		}
	}
	return key, value, true
}

// keyLen is the length of the Structured Fields key at the start of s:
// ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
func keyLen(s string) int {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] == '*') {
		return 0
	}
	i := 1
	for i < len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		i++
	}
	return i
}
