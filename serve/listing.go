package serve

import (
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// serveListing sends an HTML index of a directory: sorted names, HTML- and
// URL-escaped, without dotfiles or links that lead outside the root.
func (h *Handler) serveListing(w http.ResponseWriter, r *http.Request, name, urlPath string) {
	entries, err := fs.ReadDir(h.fsys, name)
	if err != nil {
		h.serveError(w, r, http.StatusNotFound)
		return
	}
	title := html.EscapeString(urlPath)
	var b strings.Builder
	b.WriteString("<!doctype html>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width\">\n<title>Index of ")
	b.WriteString(title)
	b.WriteString("</title>\n<style>body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:50em;padding:0 1em}" +
		"a{text-decoration:none}td{padding:.1em 1em .1em 0}td.s{text-align:right;color:#666}</style>\n<h1>Index of ")
	b.WriteString(title)
	b.WriteString("</h1>\n<table>\n")
	if urlPath != "/" {
		b.WriteString("<tr><td><a href=\"../\">../</a></td><td></td></tr>\n")
	}
	for _, de := range entries {
		n := de.Name()
		if strings.HasPrefix(n, ".") || name == "." && h.hidden(n) {
			continue
		}
		fi, err := h.stat(path.Join(name, n))
		if err != nil || !fi.IsDir() && !fi.Mode().IsRegular() {
			continue // links out of the root, devices, sockets
		}
		display, size := n, strconv.FormatInt(fi.Size(), 10)
		if fi.IsDir() {
			display, size = n+"/", "-"
		}
		href := (&url.URL{Path: "./" + display}).EscapedPath()
		b.WriteString("<tr><td><a href=\"" + html.EscapeString(href) + "\">" + html.EscapeString(display) +
			"</a></td><td class=\"s\">" + size + "</td></tr>\n")
	}
	b.WriteString("</table>\n")

	hd := w.Header()
	hd["Content-Type"] = hdrTextHTML
	hd["Content-Length"] = []string{strconv.Itoa(b.Len())}
	hd["Cache-Control"] = hdrNoCache
	hd["X-Content-Type-Options"] = hdrNosniff
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		io.WriteString(w, b.String())
	}
}
