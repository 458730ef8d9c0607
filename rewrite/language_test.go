package rewrite

import (
	"appliance/internal/language"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLanguageCondition: a site laid out as /de/, /fr/, /en/ sends "/"
// to the language the client prefers among those its rules name, the
// last rule catching everyone else, and every answer that depended on
// Accept-Language says so in Vary.
func TestLanguageCondition(t *testing.T) {
	hosts := []string{"example.test"}
	rules := Rules{
		Redirects: []*Redirect{
			must(NewRedirect(`^/$`, "/de/", 302, Cond{Languages: []string{"de"}}, hosts)),
			must(NewRedirect(`^/$`, "/fr/", 302, Cond{Languages: []string{"fr", "fr-CA"}}, hosts)),
			must(NewRedirect(`^/$`, "/en/", 302, Cond{Languages: []string{"en"}}, hosts)),
			must(NewRedirect(`^/$`, "/en/", 302, Cond{}, hosts)),
			must(NewRedirect(`^/post-only$`, "/de/", 302, Cond{Methods: []string{"POST"}, Languages: []string{"de"}}, hosts)),
		},
		Rewrites: []*Rewrite{
			must(NewRewrite(`^/docs/(.*)$`, "/docs/de/$1", false, Cond{Languages: []string{"de"}})),
		},
	}
	// The next handler varies on Accept-Encoding itself, as the file server does.
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Vary"] = []string{"Accept-Encoding"}
		io.WriteString(w, r.URL.Path)
	})
	h := New(rules, exists, next)
	tests := []struct {
		name, method, target, accept string
		status                       int
		location, body, vary         string
	}{
		{"no Accept-Language: the rule without languages", "GET", "/", "", 302, "/en/", "", "Accept-Language"},
		{"de", "GET", "/", "de", 302, "/de/", "", "Accept-Language"},
		{"de-CH reaches de", "GET", "/", "de-CH,de;q=0.9", 302, "/de/", "", "Accept-Language"},
		{"accepts de but prefers en", "GET", "/", "en, de;q=0.5", 302, "/en/", "", "Accept-Language"},
		{"prefers fr over de", "GET", "/", "fr-CA, de;q=0.8", 302, "/fr/", "", "Accept-Language"},
		{"a language no rule names", "GET", "/", "ja", 302, "/en/", "", "Accept-Language"},
		{"q=0 excludes", "GET", "/", "de;q=0, en;q=0.1", 302, "/en/", "", "Accept-Language"},
		{"star: the first rule language not excluded", "GET", "/", "de;q=0, *", 302, "/fr/", "", "Accept-Language"},
		{"other paths do not vary", "GET", "/about.html", "de", 200, "", "/about.html", "Accept-Encoding"},
		{"rewrite by language", "GET", "/docs/a.html", "de", 200, "", "/docs/de/a.html", "Accept-Encoding, Accept-Language"},
		{"rewrite not taken still varies", "GET", "/docs/a.html", "en", 200, "", "/docs/a.html", "Accept-Encoding, Accept-Language"},
		{"a failed method condition does not consult the language", "GET", "/post-only", "de", 200, "", "/post-only", "Accept-Encoding"},
		{"method and language hold", "POST", "/post-only", "de", 302, "/de/", "", "Accept-Language"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.accept != "" {
				req.Header.Set("Accept-Language", tt.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if loc := res.Header.Get("Location"); loc != tt.location {
				t.Errorf("Location %q, want %q", loc, tt.location)
			}
			if b := text(res); tt.body != "" && b != tt.body {
				t.Errorf("body %q, want %q", b, tt.body)
			}
			if v := strings.Join(res.Header.Values("Vary"), ", "); v != tt.vary {
				t.Errorf("Vary %q, want %q", v, tt.vary)
			}
		})
	}
}

func TestLanguageConditionRefused(t *testing.T) {
	many := make([]string, 33)
	for i := range many {
		many[i] = fmt.Sprintf("x%c%c", 'a'+i/26, 'a'+i%26)
	}
	for _, langs := range [][]string{{"d"}, {"de_CH"}, {"de", ""}, {"*"}, {"de-"}, many} {
		if _, err := NewRedirect(`^/$`, "/de/", 302, Cond{Languages: langs}, nil); err == nil {
			t.Errorf("redirect with languages %q accepted", langs)
		}
		if _, err := NewRewrite(`^/$`, "/de/", false, Cond{Languages: langs}); err == nil {
			t.Errorf("rewrite with languages %q accepted", langs)
		}
	}
	if _, err := NewRedirect(`^/(.*)$`, "/de/$1", 302, Cond{Languages: []string{"de"}}, nil); err == nil {
		t.Error("a redirect that loops for German speakers was accepted")
	}
}

// TestLanguageVaryOnce: a next handler that already varies on
// Accept-Language (the file server's language variants), in any letter
// case and among other fields, does not get it a second time.
func TestLanguageVaryOnce(t *testing.T) {
	rules := Rules{Rewrites: []*Rewrite{
		must(NewRewrite(`^/docs/(.*)$`, "/docs/de/$1", false, Cond{Languages: []string{"de"}})),
	}}
	for _, vary := range [][]string{{"accept-language"}, {"Accept-Encoding, Accept-Language"}, {"Accept-Encoding", "ACCEPT-LANGUAGE"}} {
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Vary"] = vary
			io.WriteString(w, r.URL.Path)
		})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/docs/a.html", nil)
		req.Header.Set("Accept-Language", "de")
		New(rules, exists, next).ServeHTTP(rec, req)
		if got := rec.Header()["Vary"]; strings.Join(got, "|") != strings.Join(vary, "|") {
			t.Errorf("next's Vary %q became %q", vary, got)
		}
	}
}

// TestCheckLanguages: rules naming more languages in all than a
// request is weighed against are refused; the same tag in two cases
// counts once.
func TestCheckLanguages(t *testing.T) {
	var rules Rules
	for i := range language.MaxOffered {
		rd, err := NewRedirect(fmt.Sprintf("/r%d", i), "/x", 302, Cond{Languages: []string{fmt.Sprintf("en-t%02d", i), fmt.Sprintf("EN-T%02d", i)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rules.Redirects = append(rules.Redirects, rd)
	}
	if err := rules.CheckLanguages(); err != nil {
		t.Fatalf("%d languages: %v", language.MaxOffered, err)
	}
	rw, err := NewRewrite("/a", "/b", false, Cond{Languages: []string{"de"}})
	if err != nil {
		t.Fatal(err)
	}
	rules.Rewrites = append(rules.Rewrites, rw)
	if err := rules.CheckLanguages(); err == nil || !strings.Contains(err.Error(), "33 languages in all, at most 32") {
		t.Fatalf("33 languages: %v", err)
	}
}
