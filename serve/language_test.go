package serve

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// langFiles: a home page with an untagged English file and German and
// French variants, an about page with tagged files only, a page in one
// language that is not the default, a page without variants, a
// compressible text in two languages and a translated error page.
var langFiles = map[string]string{
	"index.html":         "<h1>home</h1>",
	"index.html.de":      "<h1>Startseite</h1>",
	"index.html.fr":      "<h1>accueil</h1>",
	"about.html.en":      "about",
	"about.html.de":      "über uns",
	"about.html.pt-BR":   "sobre",
	"only.html.fr":       "seulement",
	"page.html":          "plain page",
	"both.html":          "untagged",
	"both.html.en":       "tagged english",
	"docs/index.html.de": "Doku",
	"docs/index.html.en": "docs",
	"doc.txt.en":         strings.Repeat("English text, compressible. ", 100),
	"doc.txt.de":         strings.Repeat("Deutscher Text, komprimierbar. ", 100),
	"logo.png.de":        "png-de",
	"404.html":           "not found",
	"404.html.de":        "nicht gefunden",
}

var langOptions = Options{
	Languages:  []string{"de", "en", "fr", "pt-BR"},
	CleanURLs:  true,
	ErrorPages: map[int]string{404: "/404.html"},
}

func init() { langOptions.DefaultLanguage = "en" }

func TestLanguageSelection(t *testing.T) {
	h, _ := site(t, langFiles, langOptions, CacheOptions{})
	tests := []struct {
		name, target, accept string
		status               int
		body, lang, vary     string
	}{
		{"no Accept-Language: default", "/", "", 200, "<h1>home</h1>", "en", "Accept-Language"},
		{"exact", "/", "de", 200, "<h1>Startseite</h1>", "de", "Accept-Language"},
		{"browser's list", "/", "fr-CH, fr;q=0.9, en;q=0.8", 200, "<h1>accueil</h1>", "fr", "Accept-Language"},
		{"de-CH reaches de", "/", "de-CH", 200, "<h1>Startseite</h1>", "de", "Accept-Language"},
		{"weights", "/", "de;q=0.5, fr;q=0.7", 200, "<h1>accueil</h1>", "fr", "Accept-Language"},
		{"q=0 excludes", "/", "de;q=0, *;q=0.5", 200, "<h1>home</h1>", "en", "Accept-Language"},
		{"star is the default", "/", "*", 200, "<h1>home</h1>", "en", "Accept-Language"},
		{"nothing acceptable: default, not 406", "/", "ja, ko;q=0.5", 200, "<h1>home</h1>", "en", "Accept-Language"},
		{"all excluded: default, not 406", "/", "*;q=0", 200, "<h1>home</h1>", "en", "Accept-Language"},
		{"index.html by name", "/index.html", "de", 200, "<h1>Startseite</h1>", "de", "Accept-Language"},
		{"variant by name is served as is", "/index.html.de", "fr", 200, "<h1>Startseite</h1>", "", ""},
		{"tagged files only", "/about.html", "de", 200, "über uns", "de", "Accept-Language"},
		{"tagged files only, default", "/about.html", "ja", 200, "about", "en", "Accept-Language"},
		{"region subtag", "/about.html", "pt", 200, "sobre", "pt-BR", "Accept-Language"},
		{"clean URL", "/about", "de-AT", 200, "über uns", "de", "Accept-Language"},
		{"directory index", "/docs/", "de", 200, "Doku", "de", "Accept-Language"},
		{"default missing: first in the site's order", "/only.html", "de", 200, "seulement", "fr", "Accept-Language"},
		{"tagged default beats untagged", "/both.html", "", 200, "tagged english", "en", "Accept-Language"},
		{"no variants: as before", "/page.html", "de", 200, "plain page", "", ""},
		{"translated error page", "/missing", "de", 404, "nicht gefunden", "de", "Accept-Language"},
		{"error page default", "/missing", "fr", 404, "not found", "en", "Accept-Language"},
		{"incompressible variant", "/logo.png", "de", 200, "png-de", "de", "Accept-Language"},
		{"compressible variants vary on both", "/doc.txt", "de", 200, langFiles["doc.txt.de"], "de", "Accept-Encoding, Accept-Language"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.accept != "" {
				hdr = []string{"Accept-Language", tt.accept}
			}
			res := do(h, "GET", tt.target, hdr...)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if b := body(t, res); b != tt.body {
				t.Errorf("body %q, want %q", b, tt.body)
			}
			if got := res.Header.Get("Content-Language"); got != tt.lang {
				t.Errorf("Content-Language %q, want %q", got, tt.lang)
			}
			if got := strings.Join(res.Header.Values("Vary"), ", "); got != tt.vary {
				t.Errorf("Vary %q, want %q", got, tt.vary)
			}
			if ct := res.Header.Get("Content-Type"); tt.status == 200 && strings.HasSuffix(tt.target, "/") && ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// TestLanguageRepresentations: every language (and coding) has its own
// strong ETag, and preconditions and ranges apply to the variant the
// request's Accept-Language selects.
func TestLanguageRepresentations(t *testing.T) {
	h, _ := site(t, langFiles, langOptions, CacheOptions{})
	de := do(h, "GET", "/", "Accept-Language", "de")
	en := do(h, "GET", "/", "Accept-Language", "en")
	tagDE, tagEN := de.Header.Get("Etag"), en.Header.Get("Etag")
	if !strings.HasSuffix(tagDE, `.de"`) || !strings.HasSuffix(tagEN, `.en"`) || tagDE == tagEN {
		t.Fatalf("ETags %s and %s", tagDE, tagEN)
	}
	if ct := de.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("variant Content-Type %q", ct)
	}
	// Identical bytes in two languages still get two tags.
	h2, _ := site(t, map[string]string{"a.txt.de": "same", "a.txt.en": "same"}, Options{Languages: []string{"en", "de"}}, CacheOptions{})
	if a, b := do(h2, "GET", "/a.txt", "Accept-Language", "de").Header.Get("Etag"), do(h2, "GET", "/a.txt").Header.Get("Etag"); a == b {
		t.Errorf("identical variants share the tag %s", a)
	}

	tests := []struct {
		name   string
		header []string
		status int
		body   string
		etag   string
	}{
		{"304 for the variant held", []string{"Accept-Language", "de", "If-None-Match", tagDE}, 304, "", tagDE},
		{"another language's tag is not a match", []string{"Accept-Language", "en", "If-None-Match", tagDE}, 200, "<h1>home</h1>", tagEN},
		{"If-Match the variant", []string{"Accept-Language", "de", "If-Match", tagDE}, 200, "<h1>Startseite</h1>", tagDE},
		{"If-Match another language", []string{"Accept-Language", "en", "If-Match", tagDE}, 412, "", ""},
		{"range of the variant", []string{"Accept-Language", "de", "Range", "bytes=4-8"}, 206, "Start", tagDE},
		{"range of the default", []string{"Range", "bytes=4-7"}, 206, "home", tagEN},
		{"If-Range with another language's tag", []string{"Accept-Language", "en", "Range", "bytes=4-7", "If-Range", tagDE}, 200, "<h1>home</h1>", tagEN},
		{"If-Range with the variant's tag", []string{"Accept-Language", "de", "Range", "bytes=4-8", "If-Range", tagDE}, 206, "Start", tagDE},
		{"unsatisfiable range", []string{"Accept-Language", "de", "Range", "bytes=100-"}, 416, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(h, "GET", "/", tt.header...)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if b := body(t, res); tt.body != "" && b != tt.body {
				t.Errorf("body %q, want %q", b, tt.body)
			}
			if got := res.Header.Get("Etag"); got != tt.etag {
				t.Errorf("ETag %s, want %s", got, tt.etag)
			}
			if v := res.Header.Get("Vary"); v != "Accept-Language" {
				t.Errorf("Vary %q on %d", v, res.StatusCode)
			}
			if cl := res.Header.Get("Content-Language"); (tt.status == 200 || tt.status == 206) != (cl != "") {
				t.Errorf("Content-Language %q on %d", cl, res.StatusCode)
			}
		})
	}
}

// TestLanguageCodings: each language has its own coded representations,
// built or from its own sidecar (doc.txt.de.gz), with tags that name both.
func TestLanguageCodings(t *testing.T) {
	h, root := site(t, langFiles, langOptions, CacheOptions{Revalidate: time.Nanosecond})
	seen := map[string]string{}
	for _, lang := range []string{"de", "en"} {
		for _, coding := range []string{"gzip", "br", "identity"} {
			res := do(h, "GET", "/doc.txt", "Accept-Language", lang, "Accept-Encoding", coding)
			raw := []byte(body(t, res))
			if got := string(decode(t, coding, raw)); got != langFiles["doc.txt."+lang] {
				t.Errorf("%s %s: wrong body", lang, coding)
			}
			if res.Header.Get("Content-Language") != lang || res.Header.Get("Vary") != "Accept-Encoding, Accept-Language" {
				t.Errorf("%s %s: %v", lang, coding, res.Header)
			}
			tag := res.Header.Get("Etag")
			if prev, dup := seen[tag]; dup {
				t.Errorf("%s %s shares the tag %s with %s", lang, coding, tag, prev)
			}
			seen[tag] = lang + " " + coding
			if !strings.Contains(tag, "."+lang) {
				t.Errorf("tag %s does not name %s", tag, lang)
			}
			// Its own tag revalidates it.
			nm := do(h, "GET", "/doc.txt", "Accept-Language", lang, "Accept-Encoding", coding, "If-None-Match", tag)
			if nm.StatusCode != 304 || nm.Header.Get("Vary") != "Accept-Encoding, Accept-Language" {
				t.Errorf("%s %s: revalidation %d %v", lang, coding, nm.StatusCode, nm.Header)
			}
		}
	}
	// A sidecar of the variant: index.html.de.gz's rule is NAME.TAG + .gz.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.NoCompression)
	zw.Write([]byte(langFiles["doc.txt.de"]))
	zw.Close()
	p := filepath.Join(root, "doc.txt.de.gz")
	os.WriteFile(p, gz.Bytes(), 0o644)
	future := time.Now().Add(time.Hour)
	os.Chtimes(p, future, future)
	res := do(h, "GET", "/doc.txt", "Accept-Language", "de", "Accept-Encoding", "gzip")
	if b := body(t, res); b != gz.String() || res.Header.Get("Content-Language") != "de" || !strings.HasSuffix(res.Header.Get("Etag"), `.de-gz"`) {
		t.Errorf("variant sidecar not served: %v", res.Header)
	}
	if b := body(t, do(h, "GET", "/doc.txt", "Accept-Language", "en", "Accept-Encoding", "gzip")); b == gz.String() {
		t.Error("the German sidecar served in English")
	}
	// 406 (identity refused, nothing else offered) varies on both.
	res = do(h, "GET", "/logo.png", "Accept-Language", "de", "Accept-Encoding", "identity;q=0")
	if res.StatusCode != 406 || res.Header.Get("Vary") != "Accept-Encoding, Accept-Language" {
		t.Errorf("406: %d %v", res.StatusCode, res.Header)
	}
}

// TestLanguageVariantsChange: variants added and removed are seen at the
// next check, as files are.
func TestLanguageVariantsChange(t *testing.T) {
	h, root := site(t, map[string]string{"index.html": "home"}, Options{Languages: []string{"en", "es"}}, CacheOptions{Revalidate: time.Nanosecond})
	if res := do(h, "GET", "/", "Accept-Language", "es"); body(t, res) != "home" || res.Header.Get("Content-Language") != "" {
		t.Fatalf("before: %v", res.Header)
	}
	os.WriteFile(filepath.Join(root, "index.html.es"), []byte("inicio"), 0o644)
	if res := do(h, "GET", "/", "Accept-Language", "es"); body(t, res) != "inicio" || res.Header.Get("Content-Language") != "es" {
		t.Fatalf("added variant: %v", res.Header)
	}
	if res := do(h, "GET", "/"); body(t, res) != "home" || res.Header.Get("Content-Language") != "en" {
		t.Fatalf("untagged default: %v", res.Header)
	}
	os.WriteFile(filepath.Join(root, "index.html.es"), []byte("inicio 2"), 0o644)
	if b := body(t, do(h, "GET", "/", "Accept-Language", "es")); b != "inicio 2" {
		t.Fatalf("edited variant: %q", b)
	}
	os.Remove(filepath.Join(root, "index.html.es"))
	if res := do(h, "GET", "/", "Accept-Language", "es"); body(t, res) != "home" || res.Header.Get("Content-Language") != "" {
		t.Fatalf("removed variant: %v", res.Header)
	}
}

// TestLanguagesOff: without Languages, NAME.TAG files are plain files.
func TestLanguagesOff(t *testing.T) {
	h, _ := site(t, langFiles, Options{}, CacheOptions{})
	res := do(h, "GET", "/", "Accept-Language", "de")
	if body(t, res) != "<h1>home</h1>" || res.Header.Get("Content-Language") != "" || res.Header.Get("Vary") != "" {
		t.Errorf("languages off: %v", res.Header)
	}
	if res := do(h, "GET", "/about.html", "Accept-Language", "de"); res.StatusCode != 404 {
		t.Errorf("about.html without languages: %d", res.StatusCode)
	}
}

// TestLanguageChoiceDoesNotAllocate: choosing among variants costs no
// allocation, like serving a file without them.
func TestLanguageChoiceDoesNotAllocate(t *testing.T) {
	h, _ := site(t, langFiles, langOptions, CacheOptions{Revalidate: time.Hour})
	r := get("/", "Accept-Language", "fr-CH, fr;q=0.9, de;q=0.8, en;q=0.7, *;q=0.1")(h)
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.status != 200 {
		t.Fatalf("status %d", w.status)
	}
	if n := testing.AllocsPerRun(100, func() { clear(w.h); h.ServeHTTP(w, r) }); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}

// BenchmarkServeLanguage serves a page with three language variants to
// a browser's Accept-Language.
func BenchmarkServeLanguage(b *testing.B) {
	h, _ := site(b, langFiles, langOptions, CacheOptions{Revalidate: time.Hour})
	r := get("/", "Accept-Language", "de-CH,de;q=0.9,en;q=0.8")(h)
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.status != 200 || w.h.Get("Content-Language") != "de" {
		b.Fatalf("status %d, %v", w.status, w.h)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// TestErrorPageVaryKept: a translated error page adds Accept-Language to
// a Vary set before it (a listing's Accept) rather than leaving it out.
func TestErrorPageVaryKept(t *testing.T) {
	h, _ := site(t, langFiles, langOptions, CacheOptions{})
	rec := httptest.NewRecorder()
	rec.Header()["Vary"] = hdrVaryAccept
	r := httptest.NewRequest("GET", "/docs/", nil)
	r.Header.Set("Accept-Language", "de")
	h.serveError(rec, r, http.StatusNotFound)
	if rec.Code != 404 || rec.Body.String() != "nicht gefunden" || strings.Join(rec.Header()["Vary"], ", ") != "Accept, Accept-Language" ||
		rec.Header().Get("Content-Language") != "de" || hdrVaryAccept[0] != "Accept" || len(hdrVaryAccept) != 1 {
		t.Errorf("%d %q %v", rec.Code, rec.Body, rec.Header())
	}
}
