package main

import (
	"net/http"

	"appliance/serve"
	"appliance/vhost"
)

// canonical puts a request's path in its one canonical form before
// anything else sees it: the router, the HTTPS redirect, every rule
// (redirect, rewrite, trailing slash, fallback, access, auth, CORS,
// headers) and the file server all match that path and only that one,
// so "//private/", "/./private/" or "/%2fprivate/" are "/private/" to all
// of them. A path with no canonical form (a ".." segment, NUL, a
// backslash, invalid UTF-8) is refused here with 400 (414 when too long),
// before any rule runs. RequestURI stays what the client sent, for the
// access log.
func canonical(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "*" && r.Method == http.MethodOptions {
			next.ServeHTTP(w, r) // "OPTIONS *" names the server, not a path
			return
		}
		p, status := serve.CleanPath(r.URL.Path)
		if status != 0 {
			vhost.Error(w, r, status)
			return
		}
		if p != r.URL.Path {
			r2 := *r
			u := *r.URL
			u.Path, u.RawPath = p, ""
			r2.URL = &u
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}
