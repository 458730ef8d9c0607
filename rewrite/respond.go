package rewrite

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"appliance/internal/httpx"
	"appliance/vhost"
)

// Respond answers every request on a path prefix with a fixed status:
// 410 Gone for what was removed, 451 Unavailable For Legal Reasons (RFC
// 7725), 503 for a section under maintenance, or 200 with a short text
// (robots.txt, a verification token).
type Respond struct {
	prefix     string
	status     int
	body       []byte   // nil: the page, or the plain body of status
	length     []string // Content-Length of body
	page       string   // a site file sent as the body ("": none)
	retryAfter []string // Retry-After (RFC 9110 10.2.3); nil: none
}

// pageServer is what the next handler offers to send a site file as the
// body of a fixed response; serve.Handler has it.
type pageServer interface {
	ServePage(w http.ResponseWriter, r *http.Request, page string, status int)
}

// NewRespond compiles a fixed response on a path prefix (written and
// matched as access and auth paths are). status is 2xx or 4xx or 5xx: a
// 3xx is a [[site.redirect]], and 204, 205, 206 and 304 carry no body of
// their own. body (text) and page (a file path in the site's root) are
// exclusive; with neither, the body is the status's plain text.
// retryAfter is for 429 and 503 only and is sent in whole seconds,
// rounded up.
func NewRespond(prefix string, status int, body, page string, retryAfter time.Duration) (*Respond, error) {
	if prefix == "" {
		prefix = "/"
	}
	if err := checkPrefix("respond", prefix); err != nil {
		return nil, err
	}
	if err := checkRespondStatus(status); err != nil {
		return nil, err
	}
	rs := &Respond{prefix: prefix, status: status}
	if err := rs.setBody(body, page); err != nil {
		return nil, err
	}
	if err := rs.setRetryAfter(retryAfter); err != nil {
		return nil, err
	}
	return rs, nil
}

// checkRespondStatus refuses a status that is not 2xx, 4xx or 5xx, or
// carries no body of its own.
func checkRespondStatus(status int) error {
	switch {
	case status < 200 || status > 599 || status/100 == 3:
		return fmt.Errorf("respond status %d: want 2xx, 4xx or 5xx (a 3xx is a [[site.redirect]])", status)
	case status == 204 || status == 205 || status == 206:
		return fmt.Errorf("respond status %d carries no body of its own: want another 2xx, 4xx or 5xx", status)
	}
	return nil
}

// setBody sets the response's body text or page, at most one of them.
func (rs *Respond) setBody(body, page string) error {
	switch {
	case body != "" && page != "":
		return fmt.Errorf("respond %q: give body or page, not both", rs.prefix)
	case body != "":
		rs.body, rs.length = []byte(body), []string{strconv.Itoa(len(body))}
	case page != "":
		if !strings.HasPrefix(page, "/") || strings.Contains(page, "..") || strings.HasSuffix(page, "/") {
			return fmt.Errorf("respond page %q must be a file path starting with /", page)
		}
		rs.page = page
	}
	return nil
}

// setRetryAfter sets the Retry-After of a 429 or 503, in whole seconds
// rounded up.
func (rs *Respond) setRetryAfter(retryAfter time.Duration) error {
	switch {
	case retryAfter < 0:
		return fmt.Errorf("respond retry_after must not be negative")
	case retryAfter > 0 && rs.status != http.StatusTooManyRequests && rs.status != http.StatusServiceUnavailable:
		return fmt.Errorf("respond retry_after is for status 429 and 503, not %d", rs.status)
	case retryAfter > 0:
		rs.retryAfter = []string{httpx.RetryAfter(retryAfter)}
	}
	return nil
}

// covers reports whether the rule answers for path: the prefix itself,
// with or without its trailing slash, and everything below it.
func (rs *Respond) covers(path string) bool { return coversPrefix(rs.prefix, path) }

// serve answers the request with the fixed response; pages sends a page
// (nil: the plain body instead).
func (rs *Respond) serve(w http.ResponseWriter, r *http.Request, pages pageServer) {
	h := w.Header()
	if rs.retryAfter != nil {
		h["Retry-After"] = rs.retryAfter
	}
	switch {
	case rs.body != nil:
		h["Content-Type"] = hdrTextPlain
		h["Content-Length"] = rs.length
		h["X-Content-Type-Options"] = hdrNosniff
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = hdrNoCache
		}
		w.WriteHeader(rs.status)
		if r.Method != http.MethodHead {
			w.Write(rs.body)
		}
	case rs.page != "" && pages != nil:
		pages.ServePage(w, r, rs.page, rs.status)
	default:
		vhost.Error(w, r, rs.status)
	}
}

// Shared header values; writers only read them.
var (
	hdrTextPlain = []string{"text/plain; charset=utf-8"}
	hdrNosniff   = []string{"nosniff"}
	hdrNoCache   = []string{"no-cache"}
)
