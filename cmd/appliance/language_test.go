package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestLanguagesIntegration runs the built binary with a site of language
// variants and a site laid out as /de/, /en/ with language redirects,
// and checks them over HTTP/1.1 (fast_http1 on and off) and HTTP/2 over
// TLS: the variant chosen, Content-Language, Vary, an ETag per language
// and coding, 304 and ranges per variant, the default for clients that
// accept none, q=0, and the redirects.
func TestLanguagesIntegration(t *testing.T) {
	doc := map[string]string{
		"en": strings.Repeat("English text, compressible. ", 100),
		"de": strings.Repeat("Deutscher Text, komprimierbar. ", 100),
	}
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http1=%v", fast), func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "v/index.html", "<h1>home</h1>")
			writeFile(t, dir, "v/index.html.de", "<h1>Startseite</h1>")
			writeFile(t, dir, "v/index.html.fr", "<h1>accueil</h1>")
			writeFile(t, dir, "v/doc.txt.en", doc["en"])
			writeFile(t, dir, "v/doc.txt.de", doc["de"])
			writeFile(t, dir, "v/404.html", "not found")
			writeFile(t, dir, "v/404.html.de", "nicht gefunden")
			writeFile(t, dir, "d/de/index.html", "deutsch")
			writeFile(t, dir, "d/en/index.html", "english")
			cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
fast_http1 = %v
state_dir = %q

[[site]]
hosts = ["v.test"]
root = %q
tls = "local"
https_redirect = false
languages = ["en", "de", "fr"]
error_pages = { 404 = "/404.html" }

[[site]]
hosts = ["d.test"]
root = %q
tls = "local"
https_redirect = false

[[site.redirect]]
from = "^/$"
to = "/de/"
status = 302
languages = ["de"]

[[site.redirect]]
from = "^/$"
to = "/en/"
status = 302
languages = ["en"]

[[site.redirect]]
from = "^/$"
to = "/en/"
status = 302
`, fast, filepath.Join(dir, "state"), filepath.Join(dir, "v"), filepath.Join(dir, "d")))
			p := start(t, "-config", cfg)
			httpsAddr := p.httpsAddr(t)
			for name, dial := range map[string]func(host string) rawClient{
				"http/1.1":    func(string) rawClient { return &h1client{dial: tcpDialer(p.addr)} },
				"h2 over TLS": func(host string) rawClient { return &h2client{dial: tlsDialer(httpsAddr, host, "h2")} },
			} {
				t.Run(name, func(t *testing.T) {
					clients := map[string]rawClient{} // one per host: a TLS connection is its SNI site's
					get := func(host, target string, header ...string) exchange {
						t.Helper()
						tr := clients[host]
						if tr == nil {
							tr = dial(host)
							clients[host] = tr
							t.Cleanup(tr.Close)
						}
						hm := map[string]string{}
						for i := 0; i+1 < len(header); i += 2 {
							if header[i+1] != "" {
								hm[header[i]] = header[i+1]
							}
						}
						ex, err := tr.do(host, target, hm)
						if err != nil || ex.status == 0 {
							t.Fatalf("GET %s%s %v: %v, status %d", host, target, header, err, ex.status)
						}
						return ex
					}
					check := func(what string, ex exchange, status int, body, lang, vary string) {
						t.Helper()
						if ex.status != status || body != "" && string(ex.body) != body ||
							ex.header.Get("Content-Language") != lang || strings.Join(ex.header.Values("Vary"), ", ") != vary {
							t.Errorf("%s: %d %q %v; want %d %q, Content-Language %q, Vary %q", what, ex.status, ex.body, ex.header, status, body, lang, vary)
						}
					}
					const al = "Accept-Language"
					en := get("v.test", "/")
					check("no Accept-Language", en, 200, "<h1>home</h1>", "en", al)
					de := get("v.test", "/", al, "de-CH, de;q=0.9, en;q=0.5")
					check("de-CH", de, 200, "<h1>Startseite</h1>", "de", al)
					check("nothing acceptable", get("v.test", "/", al, "ja"), 200, "<h1>home</h1>", "en", al)
					check("q=0", get("v.test", "/", al, "de;q=0, en;q=0, fr;q=0.1"), 200, "<h1>accueil</h1>", "fr", al)
					check("variant by name", get("v.test", "/index.html.de", al, "fr"), 200, "<h1>Startseite</h1>", "", "")

					tagEN, tagDE := en.header.Get("Etag"), de.header.Get("Etag")
					if !strings.HasSuffix(tagEN, `.en"`) || !strings.HasSuffix(tagDE, `.de"`) {
						t.Errorf("ETags %s, %s", tagEN, tagDE)
					}
					nm := get("v.test", "/", al, "de", "If-None-Match", tagDE)
					check("304 for the variant held", nm, 304, "", "", al)
					if nm.header.Get("Etag") != tagDE {
						t.Errorf("304 ETag %s", nm.header.Get("Etag"))
					}
					check("another language's tag", get("v.test", "/", al, "en", "If-None-Match", tagDE), 200, "<h1>home</h1>", "en", al)
					rg := get("v.test", "/", al, "de", "Range", "bytes=4-8")
					check("range of the variant", rg, 206, "Start", "de", al)
					if rg.header.Get("Content-Range") != "bytes 4-8/19" {
						t.Errorf("Content-Range %q", rg.header.Get("Content-Range"))
					}
					check("If-Range with another language's tag", get("v.test", "/", al, "en", "Range", "bytes=4-7", "If-Range", tagDE), 200, "<h1>home</h1>", "en", al)

					gz := get("v.test", "/doc.txt", al, "de", "Accept-Encoding", "gzip")
					check("gzip variant", gz, 200, "", "de", "Accept-Encoding, Accept-Language")
					if zr, err := gzip.NewReader(bytes.NewReader(gz.body)); err != nil {
						t.Errorf("gzip: %v", err)
					} else if b, _ := io.ReadAll(zr); string(b) != doc["de"] {
						t.Error("the gzip variant does not decode to the German text")
					}
					tagGZ := gz.header.Get("Etag")
					if !strings.HasSuffix(tagGZ, `.de-gz"`) || gz.header.Get("Content-Encoding") != "gzip" {
						t.Errorf("gzip variant: %v", gz.header)
					}
					check("gzip variant revalidated", get("v.test", "/doc.txt", al, "de", "Accept-Encoding", "gzip", "If-None-Match", tagGZ), 304, "", "", "Accept-Encoding, Accept-Language")
					check("the other language, same coding", get("v.test", "/doc.txt", al, "en", "Accept-Encoding", "gzip", "If-None-Match", tagGZ), 200, "", "en", "Accept-Encoding, Accept-Language")

					check("translated error page", get("v.test", "/missing", al, "de"), 404, "nicht gefunden", "de", al)

					for _, c := range []struct{ accept, location string }{{"de-AT", "/de/"}, {"en, de;q=0.5", "/en/"}, {"ja", "/en/"}, {"", "/en/"}} {
						ex := get("d.test", "/", al, c.accept)
						check("redirect for "+c.accept, ex, 302, "", "", al)
						if loc := ex.header.Get("Location"); loc != c.location {
							t.Errorf("redirect for %q: Location %q, want %q", c.accept, loc, c.location)
						}
					}
					check("no language rule on the path", get("d.test", "/de/", al, "en"), 200, "deutsch", "", "")
				})
			}
		})
	}
}
