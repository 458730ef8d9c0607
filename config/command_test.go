package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"appliance/rewrite"
)

// TestCheckStateDirDeploy: a deployable site keeps its releases in
// state_dir, so check tries that state_dir as it does for TLS sites,
// really making (and removing) a directory: access(2) says yes to root
// even where nothing can be made, as in /proc.
func TestCheckStateDirDeploy(t *testing.T) {
	hash := rewrite.HashPassword("tok")
	c, err := Parse("a.toml", []byte("[server]\nhttp = \":8080\"\nstate_dir = \"/proc/nope\"\n[[site]]\ndeploy_token = \""+hash+"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckStateDir()
	if err == nil || !strings.HasPrefix(err.Error(), `a.toml:3: server.state_dir "/proc/nope": cannot keep sites/ there`) {
		t.Fatalf("CheckStateDir: %v", err)
	}
	// A state_dir that can be made passes, and nothing is left in it.
	dir := t.TempDir()
	c.Server.StateDir = filepath.Join(dir, "state")
	if err := c.CheckStateDir(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("check left %v", ents)
	}
}

// TestCheckLogFiles: log_file and access_log must be files this process
// can create (with their directories) or append to; checking creates
// nothing and writes nothing.
func TestCheckLogFiles(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "blocker")
	os.WriteFile(blocker, []byte("x"), 0o644)
	existing := filepath.Join(dir, "old.log")
	os.WriteFile(existing, []byte("kept\n"), 0o644)
	for _, tc := range []struct{ server, want string }{
		{`log_file = "/proc/nope/x.log"`, `a.toml:3: server.log_file "/proc/nope/x.log": cannot be created: nothing can be made in /proc`},
		{`access_log = "` + blocker + `/x.log"`, `a.toml:3: server.access_log "` + blocker + `/x.log": cannot be created: ` + blocker + ` is not a directory`},
		{`log_file = "` + dir + `"`, `is a directory`},
		{`log_file = "` + filepath.Join(dir, "new", "deeper", "x.log") + `"`, ""},
		{`log_file = "` + existing + `"` + "\naccess_log = \"stdout\"", ""},
	} {
		c, err := Parse("a.toml", []byte("[server]\nhttp = \":8080\"\n"+tc.server+"\n[[site]]\nroot = \""+dir+"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		err = c.CheckLogFiles()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.server, err, tc.want)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("check left files: %v", ents)
	}
	if b, _ := os.ReadFile(existing); string(b) != "kept\n" {
		t.Errorf("the existing log now holds %q", b)
	}
}

// TestRuleErrorsNameTheKindOnce: an error of a rule names its kind
// once, whether rewrite's message starts with it ("respond status 204
// ...") or not ("invalid CIDR ..."), for every kind of rule.
func TestRuleErrorsNameTheKindOnce(t *testing.T) {
	dir := t.TempDir()
	head := "[server]\nhttp = \":80\"\n[[site]]\nroot = \"" + dir + "\"\n"
	for _, tc := range []struct{ kind, rule, want string }{
		{"redirect", "from = \"^/a$\"\nto = \"/b\"\nstatus = 200\n", "redirect status 200"},
		{"rewrite", "from = \"^/a$\"\nto = \"b\"\n", "rewrite target \"b\""},
		{"headers", "path = \"/a\"\nmatch = \"^/a$\"\nset = { X = \"1\" }\n", "headers: give path or match"},
		{"auth", "path = \"/p/\"\nusers = {}\n", "auth \"/p/\" has no users"},
		{"access", "path = \"/a/\"\nallow = [\"10.0.0.0/40\"]\n", "access: invalid CIDR"},
		{"cors", "path = \"/a\"\norigins = [\"nope\"]\n", "cors origin \"nope\""},
		{"respond", "path = \"/x/\"\nstatus = 204\n", "respond status 204 carries no body of its own"},
		{"rate_limit", "rate = \"1/s\"\nburst = -2\n", "rate_limit burst -2"},
	} {
		_, err := Parse("a.toml", []byte(head+"[[site."+tc.kind+"]]\n"+tc.rule))
		if err == nil || !strings.Contains(err.Error(), "a.toml:5: "+tc.want) || strings.Contains(err.Error(), tc.kind+": "+tc.kind) {
			t.Errorf("%s: %v, want a.toml:5: %s", tc.kind, err, tc.want)
		}
	}
}
