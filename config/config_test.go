package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"appliance/compress"
	"appliance/rewrite"
)

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "appliance.toml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExampleLoads(t *testing.T) {
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write404(t, dir)
	data = regexp.MustCompile(`root = "[^"]*"`).ReplaceAll(data, []byte(`root = "`+dir+`"`))
	c, err := Parse("config.example.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sites) != 2 || c.Sites[0].Pages()[404] != "/404.html" || c.Sites[1].Hosts[0] != "*" {
		t.Fatalf("sites: %+v", c.Sites)
	}
	if c.Server.MaxHeaderBytes != 32<<10 || time.Duration(c.Server.IdleTimeout) != 2*time.Minute || c.Cache.MaxBytes != 64<<20 {
		t.Fatalf("server: %+v cache: %+v", c.Server, c.Cache)
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse("a.toml", []byte("[server]\nhttp = \":8080\"\n[[site]]\nroot = \""+dir+"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sites[0]
	// What package serve defaults stays zero here: it is serve's.
	if len(s.Hosts) != 1 || s.Hosts[0] != "*" || len(s.Index) != 0 || s.CacheControl != "" || s.CompressMinBytes != 0 || s.RedirectCacheControl != "" || !s.Follow() {
		t.Fatalf("site defaults: %+v", s)
	}
	if c.Cache != (Cache{}) || c.ACME.Directory != "" {
		t.Fatalf("cache %+v, acme directory %q: serve's and certs' defaults are theirs", c.Cache, c.ACME.Directory)
	}
	if time.Duration(c.Server.ReadHeaderTimeout) != defaultReadHeaderTimeout || c.Server.MaxHeaderBytes != defaultMaxHeaderBytes {
		t.Fatalf("server defaults: %+v", c.Server)
	}
	if d := Default(); len(d.Sites) != 1 || !d.Sites[0].Demo || len(d.Sites[0].Hosts) != 1 || d.Sites[0].Hosts[0] != "*" || d.Server.HTTP != "localhost:8080" {
		t.Fatalf("Default: %+v", d)
	}
}

func TestErrorsHaveFileAndLine(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, toml, want string
	}{
		{"syntax", "[server]\nhttp = \n", "a.toml:2: "},
		{"unknown key", "[server]\nhttp = \":80\"\nhtp = \"x\"\n[[site]]\nroot = \"" + dir + "\"\n", `a.toml:3: unknown key "server.htp"`},
		{"unknown site key", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\n\n[[site]]\nhosts=[\"b\"]\nroot = \"" + dir + "\"\nrooot = 1\n", `a.toml:9: unknown key "site.rooot"`},
		{"missing root", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"a\"]\n", "a.toml:3: site has no root"},
		{"root does not exist", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"/nonexistent/x\"\n", `a.toml:4: root "/nonexistent/x": no such file or directory`},
		{"duplicate host", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"a.test\"]\nroot = \"" + dir + "\"\n[[site]]\nroot = \"" + dir + "\"\nhosts = [\"A.test.\"]\n", `a.toml:8: host "A.test." is already served by site 1`},
		{"bad host", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"a.*.test\"]\nroot = \"" + dir + "\"\n", `a.toml:4: invalid host pattern "a.*.test"`},
		{"control character in host", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"a\\u0001.test\"]\nroot = \"" + dir + "\"\n", `a.toml:4: invalid host pattern "a\x01.test"`},
		{"tab in host", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\nhosts = [\"ok.test\", \"a\\tb.test\"]\n", `a.toml:5: invalid host pattern "a\tb.test"`},
		{"newline in host", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\n  \"ok.test\",\n  \"a\\nb.test\",\n]\nroot = \"" + dir + "\"\n", `a.toml:4: invalid host pattern "a\nb.test"`},
		{"space in host", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"a b.test\"]\nroot = \"" + dir + "\"\n", `a.toml:4: invalid host pattern "a b.test"`},
		{"DEL in host", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"a\\u007f.test\"]\nroot = \"" + dir + "\"\n", `a.toml:4: invalid host pattern "a\x7f.test"`},
		{"bidi override in host", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"a\\u202e.test\"]\nroot = \"" + dir + "\"\n", `a.toml:4: invalid host pattern "a\u202e.test"`},
		{"unicode host", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"bücher.test\"]\nroot = \"" + dir + "\"\n", `a.toml:4: invalid host pattern "bücher.test": a name is ASCII`},
		{"punctuation in host", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"a/b.test\", \"a@b.test\"]\nroot = \"" + dir + "\"\n", `a.toml:4: invalid host pattern "a/b.test"`},
		{"bracket junk", "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"[::1]x\"]\nroot = \"" + dir + "\"\n", `a.toml:4: invalid host pattern "[::1]x"`},
		{"hosts required with several sites", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\n[[site]]\nhosts = [\"*\"]\nroot = \"" + dir + "\"\n", "a.toml:3: site has no hosts"},
		{"bad duration", "[server]\nhttp = \":80\"\nidle_timeout = \"forever\"\n", `a.toml:3: invalid duration "forever"`},
		{"bad size", "[cache]\nmax_bytes = \"lots\"\n", `a.toml:2: invalid size "lots"`},
		{"bad address", "[server]\nhttp = \"localhost\"\n[[site]]\nroot = \"" + dir + "\"\n", `a.toml:2: server.http: invalid address`},
		{"bad status", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\nerror_pages = { 200 = \"/x.html\" }\n", `a.toml:5: error_pages: "200" is not a 4xx or 5xx status`},
		{"bad index", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\nindex = [\"../x\"]\n", `a.toml:5: index "../x" must be a plain file name`},
		{"wrong type", "[server]\nhttp = 80\n", "a.toml:2: "},
		{"no sites", "[server]\nhttp = \":80\"\n", "a.toml: no [[site]]"},
		{"missing error page", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\nerror_pages = { 404 = \"/nope.html\" }\n", `a.toml:5: error_pages: 404 page "/nope.html": no such file in root`},
		{"error page is a directory", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + filepath.Dir(dir) + "\"\n[site.error_pages]\n404 = \"/" + filepath.Base(dir) + "\"\n", `a.toml:6: error_pages: 404 page "/` + filepath.Base(dir) + `" is not a regular file`},
		{"http disabled without https", "[server]\nhttp = \"\"\n[[site]]\nroot = \"" + dir + "\"\n", `a.toml:2: no listener`},
		{"two-line redirect_cache_control", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\nredirect_cache_control = \"max-age=1\\r\\nX: y\"\n", `a.toml:5: redirect_cache_control must be one line`},
		{"nested table line", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\n[site.types]\n\"gpx\" = \"x/y\"\n", `a.toml:6: types: "gpx" must be an extension`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.toml", []byte(tt.toml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]Size{
		"1024": 1024, "1KiB": 1024, "2MiB": 2 << 20, "1GiB": 1 << 30, "10KB": 10000, "3 MB": 3000000, "5M": 5 << 20,
		"64m": 64 << 20, "64k": 64 << 10, "2g": 2 << 30, "64mib": 64 << 20, "1kib": 1024, "1Gib": 1 << 30,
		"5kb": 5000, "5mb": 5000000, "1gb": 1000000000, "7b": 7, "7B": 7, "8 K": 8 << 10,
	} {
		var s Size
		if err := s.UnmarshalText([]byte(in)); err != nil || s != want {
			t.Errorf("%q: %d %v, want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "1TB", "k", "1kk", "1 mibs"} {
		var s Size
		err := s.UnmarshalText([]byte(in))
		if err == nil {
			t.Errorf("%q accepted as %d", in, s)
			continue
		}
		for _, form := range []string{"k, m, g", "KiB, MiB, GiB", "KB, MB, GB", "B", "any case", "1024", "1000"} {
			if !strings.Contains(err.Error(), form) {
				t.Errorf("%q: error %q does not list %q", in, err, form)
			}
		}
	}
}

// write404 puts the /404.html that the example's error_pages names in dir.
func write404(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "404.html"), []byte("not here"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultListener: without http and https the server listens on
// localhost:8080, as the README says; http = "" still disables it.
func TestDefaultListener(t *testing.T) {
	dir := t.TempDir()
	site := "[[site]]\nroot = \"" + dir + "\"\n"
	for conf, want := range map[string]string{
		site:                                  defaultHTTP,
		"[server]\n" + site:                   defaultHTTP,
		"[server]\nhttps = \":443\"\n" + site: "",
		"[server]\nhttp = \":80\"\n" + site:   ":80",
	} {
		c, err := Parse("a.toml", []byte(conf))
		if err != nil {
			t.Errorf("%q: %v", conf, err)
		} else if c.Server.HTTP != want {
			t.Errorf("%q: http %q, want %q", conf, c.Server.HTTP, want)
		}
	}
}

// TestUnknownKeyOncePerPlace: a misspelt key in three sites is three
// errors, one at each line.
func TestUnknownKeyOncePerPlace(t *testing.T) {
	dir := t.TempDir()
	conf := ""
	for _, h := range []string{"a", "b", "c"} {
		conf += "[[site]]\nhosts = [\"" + h + "\"]\nroot = \"" + dir + "\"\nclean_url = true\n"
	}
	_, err := Parse("a.toml", []byte(conf))
	want := `a.toml:4: unknown key "site.clean_url"
a.toml:8: unknown key "site.clean_url"
a.toml:12: unknown key "site.clean_url"`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestEveryErrorReported: a bad size or duration does not hide the
// other problems.
func TestEveryErrorReported(t *testing.T) {
	conf := `[server]
idle_timeout = "forever"
max_header_bytes = "lots"
bogus = 1
[cache]
max_bytes = "64 furlongs"
[[site]]
root = "/nonexistent/x"
`
	_, err := Parse("a.toml", []byte(conf))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{`a.toml:2: invalid duration "forever"`, `a.toml:3: invalid size "lots"`, `a.toml:4: unknown key "server.bogus"`, `a.toml:6: invalid size "64 furlongs"`, `a.toml:8: root "/nonexistent/x"`}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d: %q, want %q", i+1, lines[i], w)
		}
	}
}

// TestRelativePaths: a relative root (and the other paths) are found
// beside the configuration file, wherever the server is started from.
func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf", "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	write404(t, filepath.Join(dir, "conf", "site"))
	path := filepath.Join(dir, "conf", "appliance.toml")
	os.WriteFile(path, []byte("[server]\nstate_dir = \"state\"\npid_file = \"run/pid\"\naccess_log = \"stdout\"\n[[site]]\nroot = \"site\"\nerror_pages = { 404 = \"/404.html\" }\n"), 0o644)
	t.Chdir(dir) // not the configuration's directory
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "conf")
	if c.Sites[0].Root != filepath.Join(conf, "site") || c.Server.StateDir != filepath.Join(conf, "state") ||
		c.Server.PIDFile != filepath.Join(conf, "run/pid") || c.Server.AccessLog != "stdout" {
		t.Fatalf("root %q, state_dir %q, pid_file %q, access_log %q", c.Sites[0].Root, c.Server.StateDir, c.Server.PIDFile, c.Server.AccessLog)
	}
	if got := c.Where("server.state_dir"); got != path+":2" {
		t.Errorf("Where(state_dir) = %q", got)
	}
}

func TestKeyLines(t *testing.T) {
	doc := "# c\n[server]\nhttp = \"x\"\n\n[[site]]\nroot = \"/a\"\n[site.types]\n\".a\" = \"b\"\n[[site]]\n  hosts = [\n  \"a\",\n]\ns = \"\"\"\nfake = 1\n\"\"\"\n"
	want := map[string]int{"server": 2, "server.http": 3, "site.0": 5, "site.0.root": 6, "site.0.types": 7, "site.0.types..a": 8, "site.1": 9, "site.1.hosts": 10, "site.1.s": 13}
	got := keyLines(doc)
	for k, l := range want {
		if got[k] != l {
			t.Errorf("%s: line %d, want %d (all: %v)", k, got[k], l, got)
		}
	}
	if _, ok := got["site.1.fake"]; ok {
		t.Error("a key inside a multi-line string was located")
	}
}

func FuzzParse(f *testing.F) {
	example, _ := os.ReadFile("../config.example.toml")
	f.Add(string(example))
	f.Add("[server]\nhttp = \":80\"\n[[site]]\nroot = \"/\"\n")
	f.Add("[[site]]\n[site.x]\n[[site.y]]\na.b.\"c\" = 1\n")
	for _, h := range []string{`a\u0001.test`, `a\tb`, `a\nb`, "a b", `\u0000`, `a\u007f`, `a\u202e.test`, "bücher.test", "[::1]x", "*.*.a", "ok.test", "[::1]", "*.a.test", "*"} {
		f.Add("[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"" + h + "\"]\nroot = \"/\"\n")
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse("f.toml", []byte(s))
		if err == nil && (c == nil || len(c.Sites) == 0) {
			t.Fatal("accepted a config without sites")
		}
		if err == nil {
			for _, site := range c.Sites {
				for _, h := range site.Hosts {
					if strings.IndexFunc(h, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("\"\\/@?#%;,", r) }) >= 0 {
						t.Fatalf("accepted host %q", h)
					}
				}
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "f.toml") {
			t.Fatalf("error without the file name: %v", err)
		}
	})
}

func TestEncodings(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse("a.toml", []byte("[server]\nhttp = \":80\"\n[[site]]\nroot = \""+dir+"\"\nencodings = [\"gzip\", \"BR\"]\nprecompressed = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cs := c.Sites[0].Codings(); len(cs) != 2 || cs[0] != compress.Gzip || cs[1] != compress.Brotli || c.Sites[0].Sidecars() {
		t.Fatalf("codings %v, sidecars %v", cs, c.Sites[0].Sidecars())
	}
	c, _ = Parse("a.toml", []byte("[server]\nhttp = \":80\"\n[[site]]\nroot = \""+dir+"\"\nencodings = []\n"))
	if cs := c.Sites[0].Codings(); len(cs) != 0 {
		t.Fatalf("encodings = [] gave %v", cs)
	}
	c, _ = Parse("a.toml", []byte("[server]\nhttp = \":80\"\n[[site]]\nroot = \""+dir+"\"\n"))
	if cs := c.Sites[0].Codings(); len(cs) != 4 || !c.Sites[0].Sidecars() {
		t.Fatalf("defaults: %v", cs)
	}
	_, err = Parse("a.toml", []byte("[server]\nhttp = \":80\"\n[[site]]\nroot = \""+dir+"\"\nencodings = [\"gzip\", \"lzma\"]\n"))
	if err == nil || !strings.Contains(err.Error(), `a.toml:5: encodings: unknown coding "lzma"`) {
		t.Fatalf("bad coding: %v", err)
	}
}

func TestRuleErrorsHaveLines(t *testing.T) {
	dir := t.TempDir()
	head := "[server]\nhttp = \":80\"\n[[site]]\nhosts = [\"example.test\"]\nroot = \"" + dir + "\"\n"
	tests := []struct{ name, toml, want string }{
		{"bad regex", head + "[[site.redirect]]\nfrom = \"^/(a\"\nto = \"/b\"\n", "a.toml:6: redirect: invalid pattern"},
		{"bad status", head + "\n[[site.redirect]]\nfrom = \"^/a$\"\nto = \"/b\"\nstatus = 200\n", "a.toml:7: redirect status 200"},
		{"loop", head + "[[site.redirect]]\nfrom = \"^/a/(.*)$\"\nto = \"/a/$1\"\n", "a.toml:6: redirect \"^/a/(.*)$\" -> \"/a/$1\" loops"},
		{"loop through own host", head + "[[site.redirect]]\nfrom = \"^/x$\"\nto = \"https://example.test/x\"\n", "loops"},
		{"open redirect", head + "[[site.redirect]]\nfrom = \"^/go/(.*)$\"\nto = \"https://$1/\"\n", "a.toml:6: redirect target \"https://$1/\": the host must be written out"},
		{"bad rewrite target", head + "[[site.rewrite]]\nfrom = \"^/a$\"\nto = \"b\"\n", "a.toml:6: rewrite target \"b\""},
		{"second rule", head + "[[site.rewrite]]\nfrom = \"^/a$\"\nto = \"/b\"\n[[site.rewrite]]\nfrom = \"^/c$\"\nto = \"/d/$1\"\n", "a.toml:9: rewrite:"},
		{"bad header", head + "[[site.headers]]\npath = \"/a/**\"\nset = { \"Content-Length\" = \"1\" }\n", "a.toml:6: headers: header Content-Length"},
		{"plain password", head + "[[site.auth]]\npath = \"/p/\"\nusers = { alice = \"secret\" }\n", "a.toml:6: auth user \"alice\": want a bcrypt"},
		{"bad cidr", head + "[[site.access]]\npath = \"/a/\"\nallow = [\"10.0.0.0/40\"]\n", "a.toml:6: access: invalid CIDR"},
		{"bad preset", head + "security_headers = \"paranoid\"\n", "a.toml:6: security_headers \"paranoid\""},
		{"bad redirect_to", head + "redirect_to = \"example.test\"\n", "a.toml:6: redirect_to \"example.test\""},
		{"bad trailing_slash", head + "trailing_slash = \"yes\"\n", "a.toml:6: trailing_slash \"yes\""},
		{"bad fallback", head + "fallback = \"index.html\"\n", "a.toml:6: fallback \"index.html\""},
		{"bad condition", head + "[[site.rewrite]]\nfrom = \"^/a$\"\nto = \"/b\"\nmethods = [\"get\"]\n", "a.toml:6: rewrite: invalid method \"get\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.toml", []byte(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	c, err := Parse("a.toml", []byte(head+"fallback = \"/index.html\"\nsecurity_headers = \"strict\"\ntrailing_slash = \"remove\"\n[[site.redirect]]\nfrom = \"^/a$\"\nto = \"/b\"\nmethods = [\"GET\"]\nif_missing = true\n"))
	if err != nil || len(c.Sites[0].Rules().Redirects) != 1 || c.Sites[0].Rules().Fallback != "/index.html" {
		t.Fatalf("valid rules: %v", err)
	}
	if r := c.Sites[0].Rules(); r.SecurityHeaders != rewrite.SecurityStrict || r.TrailingSlash != rewrite.TrailingSlashRemove {
		t.Errorf("policies parsed to %v, %v", r.SecurityHeaders, r.TrailingSlash)
	}
}

func TestTLSErrors(t *testing.T) {
	dir := t.TempDir()
	site := "[[site]]\nhosts = [\"a.test\"]\nroot = \"" + dir + "\"\n"
	tests := []struct{ name, toml, want string }{
		{"acme wildcard", "[server]\nhttps = \":443\"\n[[site]]\nhosts = [\"*.example.com\"]\nroot = \"" + dir + "\"\ntls = \"acme\"\n", `a.toml:4: host "*.example.com" cannot have an ACME certificate: ACME here issues exact names only, no wildcards; use tls = "manual"`},
		{"acme address", "[server]\nhttps = \":443\"\n[[site]]\nhosts = [\"192.0.2.1\"]\nroot = \"" + dir + "\"\ntls = \"acme\"\n", `a.toml:4: host "192.0.2.1" cannot have an ACME certificate: an address`},
		{"acme catch-all", "[server]\nhttps = \":443\"\n[[site]]\nroot = \"" + dir + "\"\ntls = \"acme\"\n", `host "*" cannot have an ACME certificate: the catch-all site`},
		{"acme http directory", "[server]\nhttps = \":443\"\n[acme]\ndirectory = \"http://ca.test/dir\"\n" + site + "tls = \"acme\"\n", `a.toml:4: acme.directory "http://ca.test/dir"`},
		{"acme half eab", "[server]\nhttps = \":443\"\n[acme]\neab_kid = \"k\"\n" + site + "tls = \"acme\"\n", `a.toml:4: external account binding needs both`},
		{"acme bad hmac", "[server]\nhttps = \":443\"\n[acme]\neab_kid = \"k\"\neab_hmac = \"!!\"\n" + site + "tls = \"acme\"\n", `a.toml:5: eab_hmac`},
		{"tls without https", "[server]\nhttp = \":80\"\n" + site + "tls = \"local\"\n", `a.toml:6: tls = "local" needs server.https`},
		{"manual without files", "[server]\nhttps = \":443\"\n" + site + "tls = \"manual\"\n", `a.toml:6: tls = "manual" needs cert and key files`},
		{"bad tls", "[server]\nhttps = \":443\"\n" + site + "tls = \"maybe\"\n", `a.toml:6: tls "maybe"`},
		{"bad hsts", "[server]\nhttps = \":443\"\n" + site + "tls = \"local\"\nhsts = \"forever\"\n", `a.toml:7: hsts "forever"`},
		{"cert for local", "[server]\nhttps = \":443\"\n" + site + "tls = \"local\"\ncert = \"x\"\n", "a.toml:7: cert and key are for tls = \"manual\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.toml", []byte(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	c, err := Parse("a.toml", []byte("[server]\nhttps = \":443\"\n"+site+"tls = \"local\"\n"))
	if err != nil || c.Server.StateDir != "/var/lib/appliance" || c.Sites[0].HSTS != "max-age=31536000" {
		t.Fatalf("https-only local site: %v", err)
	}
	// Without tls, public names get ACME and the rest the local CA.
	for hosts, want := range map[string]string{
		`["example.com", "www.example.com"]`: "acme",
		`["example.com", "pi.lan"]`:          "local",
		`["*.example.com"]`:                  "local",
		`["*"]`:                              "local",
		`["192.168.1.2"]`:                    "local",
	} {
		c, err := Parse("a.toml", []byte("[server]\nhttps = \":443\"\n[[site]]\nhosts = "+hosts+"\nroot = \""+dir+"\"\n"))
		if err != nil {
			t.Errorf("hosts %s: %v", hosts, err)
		} else if c.Sites[0].TLS != want {
			t.Errorf("hosts %s: tls %q, want %s", hosts, c.Sites[0].TLS, want)
		}
	}
	c, err = Parse("a.toml", []byte("[server]\nhttps = \":443\"\n[acme]\nemail = \"ops@example.test\"\neab_kid = \"kid\"\neab_hmac = \"c2VjcmV0\"\n"+site+"tls = \"acme\"\n"))
	if err != nil || c.ACME.Directory != "" || string(c.ACME.EABKey()) != "secret" {
		t.Fatalf("acme site: %+v %v", c.ACME, err)
	}
}

// TestDeployKeys: a deploy_token site has no root and a real hash; the
// [deploy] and log bounds are not negative.
func TestDeployKeys(t *testing.T) {
	dir := t.TempDir()
	hash := rewrite.HashPassword("tok")
	c, err := Parse("a.toml", []byte("[server]\nhttp = \":8080\"\n[[site]]\ndeploy_token = \""+hash+"\"\n"))
	if err != nil || !c.Sites[0].Deployed() {
		t.Fatalf("a deployable site: %v", err)
	}
	c, err = Parse("a.toml", []byte("[server]\nhttps = \":8443\"\n[[site]]\nhosts = [\"d.test\"]\ntls = \"local\"\ndeploy_client_ca = \"d.pem\"\n"))
	if err != nil || !c.Sites[0].Deployed() || c.Sites[0].DeployClientCA != "d.pem" && !filepath.IsAbs(c.Sites[0].DeployClientCA) {
		t.Fatalf("a site deployable by certificate: %v", err)
	}
	// The same name for a site that is not deployed is no conflict.
	if _, err := Parse("a.toml", []byte("[server]\nhttp = \":8080\"\n[[site]]\nhosts = [\"*\"]\ndeploy_token = \""+hash+"\"\n[[site]]\nhosts = [\"_default\"]\nroot = \""+dir+"\"\n")); err != nil {
		t.Errorf("a deployed catch-all and a site _default with a root: %v", err)
	}
	for _, tc := range []struct{ conf, want string }{
		{"[[site]]\nroot = \"" + dir + "\"\ndeploy_token = \"" + hash + "\"\n", "a.toml:4: a site with deploy_token or deploy_client_ca serves what is deployed"},
		{"[[site]]\ndeploy_token = \"secret\"\n", "a.toml:4: deploy_token: want a bcrypt"},
		{"[[site]]\ndeploy_client_ca = \"d.pem\"\n", "a.toml:4: deploy_client_ca needs a TLS site"},
		{"[[site]]\nroot = \"" + dir + "\"\ntls = \"off\"\ndeploy_client_ca = \"d.pem\"\n", "a.toml:4: a site with deploy_token or deploy_client_ca serves what is deployed"},
		{"[deploy]\nmax_uploads = -1\n[[site]]\nroot = \"" + dir + "\"\n", "a.toml:4: max_uploads must not be negative"},
		{"[deploy]\nmax_file_bytes = \"2MiB\"\nmax_site_bytes = \"1MiB\"\n[[site]]\nroot = \"" + dir + "\"\n", "a.toml:4: max_file_bytes (2097152) exceeds max_site_bytes"},
		{"[admin]\ntoken = \"x\"\n[[site]]\nroot = \"" + dir + "\"\n", "a.toml:4: token: want a bcrypt"},
		// Two deployed sites must not share state_dir/sites/<name>.
		{"[[site]]\nhosts = [\"*\"]\ndeploy_token = \"" + hash + "\"\n[[site]]\nhosts = [\"_default\"]\ndeploy_token = \"" + hash + "\"\n", "a.toml:7: this site's first host keeps its releases in server.state_dir/sites/_default, as site 1's does"},
		{"[[site]]\nhosts = [\"*.a.test\"]\ndeploy_token = \"" + hash + "\"\n[[site]]\nhosts = [\"_.a.test\"]\ndeploy_token = \"" + hash + "\"\n", "a.toml:7: this site's first host keeps its releases in server.state_dir/sites/_.a.test, as site 1's does"},
	} {
		_, err := Parse("a.toml", []byte("[server]\nhttp = \":8080\"\n"+tc.conf))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.conf, err, tc.want)
		}
	}
}

func TestRespondAndRateLimitConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "gone.html"), []byte("gone"), 0o644)
	site := "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\n"
	good := site + `maintenance_page = "/gone.html"
[[site.respond]]
path = "/old/"
status = 410
page = "/gone.html"
[[site.respond]]
path = "/api/"
status = 503
body = "later"
retry_after = 120
[[site.respond]]
path = "/busy/"
status = 429
retry_after = "2m"
[[site.rate_limit]]
path = "/api/"
rate = "10/s"
burst = 20
[[site.rate_limit]]
rate = "600/m"
`
	c, err := Parse("a.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sites[0]
	if len(s.Respond) != 3 || time.Duration(s.Respond[1].RetryAfter) != 2*time.Minute || time.Duration(s.Respond[2].RetryAfter) != 2*time.Minute ||
		len(s.RateLimits) != 2 || s.RateLimits[0].Burst != 20 || s.MaintenancePage != "/gone.html" {
		t.Errorf("decoded %+v", s)
	}
	// Their defaults are rewrite's and cmd/appliance's: zero here.
	if c.Server.RateLimitClients != 0 || c.Server.MaintenanceRetryAfter != 0 {
		t.Errorf("defaults: rate_limit_clients %d, maintenance_retry_after %v", c.Server.RateLimitClients, time.Duration(c.Server.MaintenanceRetryAfter))
	}
	for _, tt := range []struct{ name, toml, want string }{
		{"redirect status", site + "[[site.respond]]\npath = \"/x/\"\nstatus = 301\n", `a.toml:5: respond status 301`},
		{"missing page", site + "[[site.respond]]\npath = \"/x/\"\nstatus = 410\npage = \"/nope.html\"\n", `a.toml:8: respond page "/nope.html": no such file in root`},
		{"retry on 410", site + "[[site.respond]]\npath = \"/x/\"\nstatus = 410\nretry_after = 5\n", `a.toml:5: respond retry_after is for status 429 and 503`},
		{"retry of a wrong type", site + "[[site.respond]]\npath = \"/x/\"\nstatus = 503\nretry_after = true\n", `a.toml:8: `},
		{"bad rate", site + "[[site.rate_limit]]\npath = \"/x/\"\nrate = \"10 per second\"\n", `a.toml:5: rate_limit: rate "10 per second": want a count per unit`},
		{"rate path not canonical", site + "[[site.rate_limit]]\npath = \"/x//y/\"\nrate = \"1/s\"\n", `a.toml:5: rate_limit path "/x//y/" is not in canonical form`},
		{"bad burst", site + "[[site.rate_limit]]\nrate = \"1/s\"\nburst = -2\n", `a.toml:5: rate_limit burst -2`},
		{"missing maintenance page", site + "maintenance_page = \"/m.html\"\n", `a.toml:5: maintenance_page "/m.html": no such file in root`},
		{"negative table bound", "[server]\nhttp = \":80\"\nrate_limit_clients = -1\n[[site]]\nroot = \"" + dir + "\"\n", `a.toml:3: rate_limit_clients must not be negative`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.toml", []byte(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestExampleNamesEveryKey: `appliance help` says every configuration
// key is in config.example.toml; each key of Config, at any depth, is
// there as a key (key = ..., or a [table] or [[array]] header), set or
// commented out.
func TestExampleNamesEveryKey(t *testing.T) {
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, table string)
	walk = func(typ reflect.Type, table string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for f := range typ.Fields() {
			key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if key == "" || key == "-" {
				continue
			}
			re := regexp.MustCompile(`(?m)(^|[\s#.\[{,])` + regexp.QuoteMeta(key) + `(\s*=|\]|\.)`)
			if !re.Match(data) {
				t.Errorf("config.example.toml lacks %s%s", table, key)
			}
			walk(f.Type, table+key+".")
		}
	}
	walk(reflect.TypeFor[Config](), "")
}
