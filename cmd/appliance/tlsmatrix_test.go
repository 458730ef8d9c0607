package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSMatrix runs the HTTPS listener's security rule through the
// configurations that change how a connection is served: fast_http1 on
// and off, listeners bound or passed by socket activation, SNI naming
// the site, none (a client that connected by address) or another
// site's, a site with client_ca or not, a valid, foreign or no client
// certificate, HTTP/1.1 and HTTP/2. The rule: a site answers only on a
// connection whose handshake used its TLS policy (by SNI, else by the
// local address, else the catch-all's) and, for client_ca, after a
// valid client certificate; otherwise the handshake fails or the answer
// is 421. Plaintext on the HTTPS port never gets a page.
func TestTLSMatrix(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"m", "o", "all"} {
		writeFile(t, dir, s+"/index.html", s)
	}
	caFile, valid := clientCert(t, dir)
	_, foreign := clientCert(t, t.TempDir()) // signed by a CA the site does not know

	type site struct {
		name       string // a name only this site answers
		body       string
		clientCA   bool
		anotherSNI string // another site's name
	}
	m := site{"m.test", "m", true, "o.test"}
	o := site{"o.test", "o", false, "m.test"}
	all := site{"any.test", "all", false, "o.test"} // the catch-all
	byName := map[string]site{"m.test": m, "o.test": o}
	certs := map[string][]tls.Certificate{"no": nil, "a valid": {valid}, "a foreign": {foreign}}

	for _, fast := range []bool{true, false} {
		for _, activated := range []bool{false, true} {
			t.Run(fmt.Sprintf("fast_http1=%v/activation=%v", fast, activated), func(t *testing.T) {
				cfg := writeFile(t, t.TempDir(), "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
fast_http1 = %v
state_dir = %q
[[site]]
hosts = ["m.test"]
root = %q
tls = "local"
client_ca = %q
[[site]]
hosts = ["o.test"]
root = %q
tls = "local"
[[site]]
hosts = ["*"]
root = %q
tls = "local"
`, fast, filepath.Join(dir, "state"), filepath.Join(dir, "m"), caFile, filepath.Join(dir, "o"), filepath.Join(dir, "all")))
				var p *proc
				if activated {
					files, _, httpsAddr := activatedListeners(t)
					p = startActivated(t, cfg, files)
					if !strings.Contains(p.log.String(), `listener="socket activation"`) || !strings.Contains(p.log.String(), "https://"+httpsAddr) {
						t.Fatalf("not serving on the passed socket %s:\n%s", httpsAddr, p.log.String())
					}
				} else {
					p = start(t, "-config", cfg)
				}
				addr := p.httpsAddr(t)

				for _, target := range []site{m, o, all} {
					for _, sniCase := range []string{"the site", "none", "another site"} {
						sni, hs := target.name, target // hs: the site whose policy the handshake uses
						switch sniCase {
						case "none":
							sni, hs = "", all // no site for 127.0.0.1: the catch-all
						case "another site":
							sni, hs = target.anotherSNI, byName[target.anotherSNI]
						}
						for certCase, cc := range certs {
							want := "200 " + target.body
							switch {
							case hs.clientCA && certCase != "a valid":
								want = "refused"
							case hs != target:
								want = "421"
							}
							for _, h2 := range []bool{false, true} {
								got, err := outcome(sniClient(addr, sni, h2, cc...), target.name, h2)
								if got != want {
									t.Errorf("Host %s (client_ca %v), SNI %s (%q), %s client certificate, h2 %v: %s (%v), want %s",
										target.name, target.clientCA, sniCase, sni, certCase, h2, got, err, want)
								}
							}
						}
					}
				}

				// Plaintext on the HTTPS port: closed, an alert or 400, never a page.
				for _, req := range []string{
					"GET / HTTP/1.1\r\nHost: m.test\r\nConnection: close\r\n\r\n",
					"GET / HTTP/1.1\r\nHost: o.test\r\nConnection: close\r\n\r\n",
					"GET / HTTP/1.0\r\n\r\n",
					"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
				} {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						t.Fatal(err)
					}
					c.SetDeadline(time.Now().Add(10 * time.Second))
					io.WriteString(c, req)
					b, _ := io.ReadAll(c)
					c.Close()
					if s := string(b); strings.HasPrefix(s, "HTTP/") && !strings.HasPrefix(s[min(len(s), 9):], "400 ") {
						t.Errorf("plaintext %q on the HTTPS port: %q", req, s)
					}
				}
			})
		}
	}
}
