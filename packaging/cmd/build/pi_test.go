package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPiConfig checks configs for the board at build time: the image's
// default passes; a desktop config, and each thing that cannot work on
// the board, is refused at its file and line.
func TestPiConfig(t *testing.T) {
	site := t.TempDir()
	os.MkdirAll(filepath.Join(site, "blog"), 0o755)
	os.WriteFile(filepath.Join(site, "cert.pem"), []byte("not a certificate"), 0o644)
	if err := checkPiConfig("default.toml", []byte(defaultPiConfig), "../../../cmd/appliance/demo"); err != nil {
		t.Fatalf("the default config: %v", err)
	}
	ok := "[server]\nhttp = \":8080\"\nhttps = \"[::]:8443\"\naccess_log = \"/var/log/appliance/access.log\"\n[admin]\nlisten = \"0.0.0.0:9000\"\n" +
		"[[site]]\nhosts = [\"a.lan\"]\nroot = \"/perm/appliance/site\"\n[[site]]\nhosts = [\"b.lan\"]\nroot = \"/perm/appliance/site/blog/\"\n"
	if err := checkPiConfig("ok.toml", []byte(ok), site); err != nil {
		t.Fatalf("ok.toml: %v", err)
	}
	desktop := t.TempDir() // a root that exists here, not on the board
	for _, tc := range []struct{ name, config, want string }{
		{"desktop", "[server]\nhttp = \"127.0.0.1:8080\"\nstate_dir = \"/tmp/state\"\n\n[[site]]\nroot = \"" + desktop + "\"\n",
			"desktop.toml:2: server.http = \"127.0.0.1:8080\" listens on the board's loopback only: nothing off the board can reach it; use \":8080\" (every interface)\n" +
				"desktop.toml:3: state_dir \"/tmp/state\" is not on the card's writable partition: the root file system is read-only and /tmp and /run are lost at each boot; use \"/perm/appliance/state\"\n" +
				"desktop.toml:6: root \"" + desktop + "\" is not on the image: the image puts the site (-site DIR) in /perm/appliance/site, on the card's fourth partition; use that or a directory in it"},
		{"localhost admin", "[server]\nhttp = \":80\"\n[admin]\nlisten = \"localhost:9090\"\n[[site]]\nroot = \"/perm/appliance/site\"\n",
			"localhost admin.toml:4: admin.listen = \"localhost:9090\" listens on the board's loopback only"},
		{"fixed address", "[server]\nhttp = \"192.168.1.20:80\"\n[[site]]\nroot = \"/perm/appliance/site\"\n",
			"fixed address.toml:2: server.http = \"192.168.1.20:80\": the board's address comes from DHCP"},
		{"missing root", "[server]\nhttp = \":80\"\n[[site]]\nroot = \"/perm/appliance/site/shop\"\n",
			"missing root.toml:4: root \"/perm/appliance/site/shop\": no such file or directory"},
		{"access log", "[server]\nhttp = \":80\"\naccess_log = \"/tmp/access.log\"\n[[site]]\nroot = \"/perm/appliance/site\"\n",
			"access log.toml:3: access_log \"/tmp/access.log\" is not on the card's writable partition"},
		{"log file", "[server]\nhttp = \":80\"\nlog_file = \"/tmp/server.log\"\n[[site]]\nroot = \"/perm/appliance/site\"\n",
			"log file.toml:3: log_file \"/tmp/server.log\" is not on the card's writable partition"},
		{"manual", "[server]\nhttps = \":443\"\n[[site]]\nhosts = [\"a.lan\"]\nroot = \"/perm/appliance/site\"\ntls = \"manual\"\ncert = \"/perm/appliance/site/cert.pem\"\nkey = \"/etc/ssl/a.key\"\n",
			"manual.toml:8: key \"/etc/ssl/a.key\" is not on the image"},
		{"key in site", "[server]\nhttps = \":443\"\n[[site]]\nhosts = [\"a.lan\"]\nroot = \"/perm/appliance/site\"\ntls = \"manual\"\ncert = \"/etc/a.pem\"\nkey = \"/perm/appliance/site/cert.pem\"\n",
			"key in site.toml:8: key \"/perm/appliance/site/cert.pem\" is inside the site's files: anyone could download it"},
	} {
		err := checkPiConfig(tc.name+".toml", []byte(tc.config), site)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got\n%v\nwant\n%s", tc.name, err, tc.want)
		}
	}
}
