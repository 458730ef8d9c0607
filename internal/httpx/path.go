package httpx

import (
	"net/http"
	"path"
	"strings"
	"unicode/utf8"
)

// MaxPathLen bounds the decoded request path; longer ones get 414.
const MaxPathLen = 2048

// CleanPath is the canonical form of a decoded URL path, the one every
// rule and the file lookup see, or the status that refuses it. Empty and
// "." segments are dropped ("//a/./b" is "/a/b", as nginx's merge_slashes
// and Caddy's path matchers do); a trailing slash is kept. It fails
// closed: a path not starting with "/", a ".." segment, NUL, a backslash
// or invalid UTF-8 is 400, one longer than MaxPathLen 414. A path that is
// already canonical comes back as it is, without allocating.
func CleanPath(p string) (string, int) {
	if len(p) == 0 || p[0] != '/' {
		return "", http.StatusBadRequest
	}
	if len(p) > MaxPathLen {
		return "", http.StatusRequestURITooLong
	}
	if !utf8.ValidString(p) {
		return "", http.StatusBadRequest
	}
	clean := true
	for i := 1; i <= len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		seg := p[i : i+j]
		if strings.IndexByte(seg, 0) >= 0 || strings.IndexByte(seg, '\\') >= 0 {
			return "", http.StatusBadRequest
		}
		switch seg {
		case "":
			if i+j < len(p) { // "//" inside the path
				clean = false
			}
		case ".":
			clean = false
		case "..":
			return "", http.StatusBadRequest
		}
		i += j + 1
	}
	if clean {
		return p, 0
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c, 0
}
