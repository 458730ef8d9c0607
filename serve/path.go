package serve

import (
	"net/http"
	"path"
	"strings"
	"unicode/utf8"
)

// maxPathLen bounds the decoded request path; longer ones get 414.
const maxPathLen = 2048

// cleanPath validates a decoded URL path and returns it in canonical form
// (no empty or "." segments, trailing slash kept) or the status to answer
// with. It fails closed: ".." segments, NUL, backslashes and invalid UTF-8
// are 400, dotfiles and dot-directories are 404 except /.well-known/.
func cleanPath(p string) (string, int) {
	if len(p) == 0 || p[0] != '/' {
		return "", http.StatusBadRequest
	}
	if len(p) > maxPathLen {
		return "", http.StatusRequestURITooLong
	}
	if !utf8.ValidString(p) {
		return "", http.StatusBadRequest
	}
	clean := true
	first := true
	for i := 1; i <= len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		seg := p[i : i+j]
		if strings.IndexByte(seg, 0) >= 0 || strings.IndexByte(seg, '\\') >= 0 {
			return "", http.StatusBadRequest
		}
		switch {
		case seg == "":
			if i+j < len(p) { // "//" inside the path
				clean = false
			}
		case seg == ".":
			clean = false
		case seg == "..":
			return "", http.StatusBadRequest
		case seg[0] == '.':
			if !first || seg != ".well-known" {
				return "", http.StatusNotFound
			}
		}
		if seg != "" && seg != "." {
			first = false
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

// fsName turns a clean URL path into an io/fs name: "/" is ".", "/a/b/" is "a/b".
func fsName(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return "."
	}
	return p
}
