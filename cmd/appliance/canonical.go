package main

import (
	"net/http"
	"net/netip"

	"appliance/internal/httpx"
	"appliance/realip"
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
		p, status := httpx.CleanPath(r.URL.Path)
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

// realClient makes r.RemoteAddr the client's address for everything
// after it (the access log, the metrics, [[site.access]]) when the
// request comes from a trusted proxy: the one place where the header
// named by which (X-Forwarded-For or Forwarded) is believed, by the
// rightmost-untrusted-hop rule (realip.Trusted.Client). The peer it
// starts from is the connection's, which a PROXY protocol header has
// already made the client behind a load balancer. A trusted proxy that
// names no usable address ("unknown", an obfuscated name) makes the
// client "unknown", which no allow rule admits. With no trusted proxies
// it is next itself: nothing is read, nothing allocated.
func realClient(trusted realip.Trusted, which realip.Header, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		client, res := trusted.Client(peer.Addr(), r.Header, which)
		if res == realip.Peer {
			next.ServeHTTP(w, r)
			return
		}
		r2 := *r
		r2.RemoteAddr = "unknown"
		if res == realip.Found {
			r2.RemoteAddr = client.String()
		}
		next.ServeHTTP(w, &r2)
	})
}
