package vhost

import (
	"net/http"
	"strconv"
)

// Error answers with status and a short plain-text body, "404 Not
// Found\n": the one writer of that body for the router (a request no
// site serves), the rules (refusals, redirects) and the file server (no
// error page). A Cache-Control the caller set (no-store on a 401) is
// kept; without one the answer is no-cache. Known statuses allocate
// nothing here.
func Error(w http.ResponseWriter, r *http.Request, status int) {
	b, ok := plainBodies[status]
	if !ok {
		b = newPlainBody(status)
	}
	hd := w.Header()
	hd["Content-Type"] = hdrTextPlain
	hd["Content-Length"] = b.length
	hd["X-Content-Type-Options"] = hdrNosniff
	if _, ok := hd["Cache-Control"]; !ok {
		hd["Cache-Control"] = hdrNoCache
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b.body) // a []byte: no copy for writers without WriteString
	}
}

// The header values Error sets are shared by all its answers: headers
// are replaced, never edited in place.
var (
	hdrTextPlain = []string{"text/plain; charset=utf-8"}
	hdrNosniff   = []string{"nosniff"}
	hdrNoCache   = []string{"no-cache"}
)

type plainBody struct {
	body   []byte // writers only read it (io.Writer)
	length []string
}

func newPlainBody(status int) plainBody {
	body := strconv.Itoa(status) + " " + http.StatusText(status) + "\n"
	return plainBody{[]byte(body), []string{strconv.Itoa(len(body))}}
}

// plainBodies holds the body of every status net/http names.
var plainBodies = func() map[int]plainBody {
	m := map[int]plainBody{}
	for s := 100; s < 600; s++ {
		if http.StatusText(s) != "" {
			m[s] = newPlainBody(s)
		}
	}
	return m
}()
