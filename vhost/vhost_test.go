package vhost

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type named string

func (n named) ServeHTTP(w http.ResponseWriter, r *http.Request) { io.WriteString(w, string(n)) }

func TestLookup(t *testing.T) {
	rt := New()
	for pattern, name := range map[string]string{
		"example.test": "example", "WWW.Example.Test": "www", "*.blog.test": "blog",
		"blog.test": "blog-apex", "127.0.0.1": "ip", "::1": "ip6",
	} {
		if err := rt.Add(pattern, named(name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ host, want string }{
		{"example.test", "example"},
		{"EXAMPLE.test", "example"},
		{"example.test:8080", "example"},
		{"example.test.", "example"},
		{"example.test.:443", "example"},
		{"www.example.test", "www"},
		{"a.blog.test", "blog"},
		{"A.Blog.Test:80", "blog"},
		{"a.b.blog.test", ""}, // one label only
		{"blog.test", "blog-apex"},
		{"127.0.0.1:8080", "ip"},
		{"[::1]:8080", "ip6"},
		{"[::1]", "ip6"},
		{"other.test", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := ""
		if h := rt.Lookup(tt.host); h != nil {
			got = string(h.(named))
		}
		if got != tt.want {
			t.Errorf("Lookup(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
	rt.Add("*", named("default"))
	if h := rt.Lookup("other.test"); h == nil || string(h.(named)) != "default" {
		t.Error("catch-all not used")
	}
	if h := rt.Lookup("a.b.blog.test"); string(h.(named)) != "default" {
		t.Error("catch-all not used for a deeper name")
	}
}

func TestAddRejects(t *testing.T) {
	rt := New()
	rt.Add("a.test", named("a"))
	rt.Add("*.a.test", named("a"))
	rt.Add("*", named("a"))
	for _, p := range []string{"A.TEST", "a.test.", "*.A.test", "*", "", "a.*.test", "**.a", "*.", "a b", "a.test:80", "a..test", ".a.test", "*.127.0.0.1"} {
		if err := rt.Add(p, named("x")); err == nil {
			t.Errorf("Add(%q) accepted", p)
		}
	}
}

func TestServeHTTP(t *testing.T) {
	rt := New()
	rt.Add("secret-site.test", named("secret"))
	srv := httptest.NewServer(rt)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Host = "unknown.test"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 404 || strings.Contains(string(b), "secret") {
		t.Fatalf("unknown host: %d %q", res.StatusCode, b)
	}

	req.Host = "Secret-Site.test:1234"
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "secret" {
		t.Fatalf("known host: %q", b)
	}
}
