package serve

import (
	"bytes"
	"cmp"
	"encoding/json"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxListing bounds a directory listing: the first maxListing entries
// in the requested order are listed, and the listing says it was cut.
// While the directory is read, at most twice as many entries are held,
// so a listing of any directory holds about 2 × maxListing × (name +
// 80 bytes) at most, under 8 MB with 255-byte names, and sends at most
// maxListing rows.
const maxListing = 10000

// listBatch is how many directory entries are read at a time.
const listBatch = 256

// listEntry is one listed name: a file or a directory the site serves.
type listEntry struct {
	name  string // as in the directory
	size  int64  // 0 for a directory
	mtime time.Time
	dir   bool
}

// listOrder is the order a listing is sorted in: by name, size or
// modification time (ties by name), ascending or descending.
type listOrder struct {
	by   string // "name", "size" or "time"
	desc bool
}

// parseListOrder reads ?sort=name|size|time and &order=asc|desc; other
// query parameters are not the listing's and are ignored. The error
// says what is wrong with a value.
func parseListOrder(rawQuery string) (listOrder, string) {
	o := listOrder{by: "name"}
	if rawQuery == "" {
		return o, ""
	}
	q, _ := url.ParseQuery(rawQuery)
	if v, ok := q["sort"]; ok {
		switch v[0] {
		case "name", "size", "time":
			o.by = v[0]
		default:
			return o, "sort must be name, size or time"
		}
	}
	if v, ok := q["order"]; ok {
		switch v[0] {
		case "asc":
		case "desc":
			o.desc = true
		default:
			return o, "order must be asc or desc"
		}
	}
	return o, ""
}

func (o listOrder) compare(a, b listEntry) int {
	c := 0
	switch o.by {
	case "size":
		c = cmp.Compare(a.size, b.size)
	case "time":
		c = a.mtime.Compare(b.mtime)
	}
	if c == 0 {
		c = strings.Compare(a.name, b.name)
	}
	if o.desc {
		return -c
	}
	return c
}

// query is the query string that sorts a listing by o.
func (o listOrder) query() string {
	if o.desc {
		return "?sort=" + o.by + "&order=desc"
	}
	return "?sort=" + o.by
}

// readListing returns the entries of the directory name that a listing
// shows, sorted by o, at most maxListing of them (truncated: there were
// more). It reads the directory in batches, keeping the best maxListing
// entries so far, so memory stays bounded however large the directory.
func (h *Handler) readListing(name, urlPath string, o listOrder) (entries []listEntry, truncated bool, err error) {
	f, err := h.fsys.Open(name)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	d, ok := f.(fs.ReadDirFile)
	if !ok {
		return nil, false, fs.ErrInvalid
	}
	byOrder := o.compare
	for {
		batch, err := d.ReadDir(listBatch)
		for _, de := range batch {
			if e, ok := h.listable(name, urlPath, de.Name()); ok {
				entries = append(entries, e)
				if len(entries) == 2*maxListing {
					slices.SortFunc(entries, byOrder)
					entries, truncated = entries[:maxListing], true
				}
			}
		}
		if err == io.EOF || len(batch) == 0 {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	slices.SortFunc(entries, byOrder)
	if len(entries) > maxListing {
		entries, truncated = entries[:maxListing], true
	}
	return entries, truncated, nil
}

// listable returns the entry for the name n in the directory dir
// (urlPath in URLs), if the site would serve it: not a dotfile, a name
// whose URL path is canonical (no backslash, NUL or invalid UTF-8,
// within the length limit: what cleanPath admits), and a regular file
// or a directory reached without leaving the root (or without any
// symbolic link, when the site refuses them).
func (h *Handler) listable(dir, urlPath, n string) (listEntry, bool) {
	if strings.HasPrefix(n, ".") || dir == "." && h.hidden(n) {
		return listEntry{}, false
	}
	if p, status := cleanPath(urlPath + n); status != 0 || p != urlPath+n {
		return listEntry{}, false
	}
	fi, err := h.stat(path.Join(dir, n))
	if err != nil || !fi.IsDir() && !fi.Mode().IsRegular() {
		return listEntry{}, false // links out of the root, devices, sockets
	}
	e := listEntry{name: n, mtime: fi.ModTime(), dir: fi.IsDir()}
	if !e.dir {
		e.size = fi.Size()
	}
	return e, true
}

// href is the escaped relative URL of a listed entry.
func (e *listEntry) href() string {
	display := e.name
	if e.dir {
		display += "/"
	}
	return (&url.URL{Path: "./" + display}).EscapedPath()
}

// Listing representations.
var (
	hdrJSON       = []string{"application/json"}
	hdrVaryAccept = []string{"Accept"}
)

// serveListing sends an index of a directory, as HTML or, when the
// client prefers it (Accept), as JSON, sorted as the query asks.
func (h *Handler) serveListing(w http.ResponseWriter, r *http.Request, name, urlPath string) {
	hd := w.Header()
	hd["Vary"] = hdrVaryAccept
	o, msg := parseListOrder(r.URL.RawQuery)
	if msg != "" {
		hd["Cache-Control"] = hdrNoCache
		http.Error(w, "400 Bad Request: "+msg, http.StatusBadRequest)
		return
	}
	entries, truncated, err := h.readListing(name, urlPath, o)
	if err != nil {
		h.serveError(w, r, http.StatusNotFound)
		return
	}
	var b []byte
	if prefersJSON(r.Header["Accept"]) {
		b = listingJSON(urlPath, entries, truncated)
		hd["Content-Type"] = hdrJSON
	} else {
		b = listingHTML(urlPath, entries, truncated, o)
		hd["Content-Type"] = hdrTextHTML
	}
	hd["Content-Length"] = []string{strconv.Itoa(len(b))}
	hd["Cache-Control"] = hdrNoCache
	hd["X-Content-Type-Options"] = hdrNosniff
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// listingJSON is the JSON listing: {"path", "truncated", "entries": [{
// "name", "size", "modified" (RFC 3339, UTC), "is_dir", "url"}]}, url
// relative to the listing and escaped.
func listingJSON(urlPath string, entries []listEntry, truncated bool) []byte {
	type entry struct {
		Name     string `json:"name"`
		Size     int64  `json:"size"`
		Modified string `json:"modified"`
		IsDir    bool   `json:"is_dir"`
		URL      string `json:"url"`
	}
	out := struct {
		Path      string  `json:"path"`
		Truncated bool    `json:"truncated"`
		Entries   []entry `json:"entries"`
	}{urlPath, truncated, make([]entry, len(entries))}
	for i, e := range entries {
		out.Entries[i] = entry{e.name, e.size, e.mtime.UTC().Format(time.RFC3339), e.dir, e.href()}
	}
	b, _ := json.Marshal(out) // strings and numbers only: cannot fail
	return append(b, '\n')
}

// listingHTML is the HTML listing: names HTML- and URL-escaped, sizes in
// binary units, column headings that sort by that column (a second
// click reverses).
func listingHTML(urlPath string, entries []listEntry, truncated bool, o listOrder) []byte {
	title := html.EscapeString(urlPath)
	var b bytes.Buffer
	b.WriteString("<!doctype html>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width\">\n<title>Index of ")
	b.WriteString(title)
	b.WriteString("</title>\n<style>body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:50em;padding:0 1em}" +
		"a{text-decoration:none}th{text-align:left}td,th{padding:.1em 1em .1em 0}.s{text-align:right;color:#666}</style>\n<h1>Index of ")
	b.WriteString(title)
	b.WriteString("</h1>\n<table>\n<tr>")
	for _, col := range []struct{ by, label, class string }{{"name", "Name", ""}, {"size", "Size", ` class="s"`}, {"time", "Modified", ""}} {
		next := listOrder{by: col.by, desc: o.by == col.by && !o.desc}
		b.WriteString("<th" + col.class + "><a href=\"" + html.EscapeString(next.query()) + "\">" + col.label + "</a></th>")
	}
	b.WriteString("</tr>\n")
	if urlPath != "/" {
		b.WriteString("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n")
	}
	for i := range entries {
		e := &entries[i]
		display, size := e.name, "-"
		if e.dir {
			display += "/"
		} else {
			size = "<span title=\"" + strconv.FormatInt(e.size, 10) + " bytes\">" + humanSize(e.size) + "</span>"
		}
		b.WriteString("<tr><td><a href=\"" + html.EscapeString(e.href()) + "\">" + html.EscapeString(display) +
			"</a></td><td class=\"s\">" + size + "</td><td>" + e.mtime.UTC().Format("2006-01-02 15:04") + "</td></tr>\n")
	}
	b.WriteString("</table>\n")
	if truncated {
		b.WriteString("<p>Only the first " + strconv.Itoa(maxListing) + " entries in this order are listed.</p>\n")
	}
	return b.Bytes()
}

// humanSize writes a byte count in binary units: "512 B", "1.2 KiB",
// "34 MiB" (one decimal below 10).
func humanSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n) / 1024
	unit := 0
	units := [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	for v >= 1023.95 && unit < len(units)-1 {
		v /= 1024
		unit++
	}
	prec := 0
	if v < 9.95 {
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + units[unit]
}
