package serve

import (
	"net/http"
	"strings"

	"appliance/internal/httpx"
)

// cleanPath is httpx.CleanPath with the file server's own refusal:
// dotfiles and dot-directories are 404, except /.well-known/.
func cleanPath(p string) (string, int) {
	c, status := httpx.CleanPath(p)
	if status != 0 || !strings.Contains(c, "/.") {
		return c, status
	}
	for i, seg := range strings.Split(c[1:], "/") {
		if seg != "" && seg[0] == '.' && (i > 0 || seg != ".well-known") {
			return "", http.StatusNotFound
		}
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
