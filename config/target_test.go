package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseFor checks a configuration for another machine: its paths
// are looked up where Target.Path says, unchecked ones are left to the
// target's rules, and those rules' errors carry the file and line.
func TestParseFor(t *testing.T) {
	here := t.TempDir()
	onBoard := func(p string) (string, bool) {
		if rest, ok := strings.CutPrefix(p, "/board"); ok && (rest == "" || rest[0] == '/') {
			return filepath.Join(here, rest), true
		}
		return "", false
	}
	target := Target{
		Path: onBoard,
		Rules: func(c *Config, errorf func(key, format string, args ...any)) {
			for i, s := range c.Sites {
				if _, ok := onBoard(s.Root); !ok {
					errorf(fmt.Sprintf("site.%d.root", i), "root %q is not on the board", s.Root)
				}
			}
		},
	}
	data := "[server]\nhttp = \":80\"\n\n[[site]]\nhosts = [\"a\"]\nroot = \"/board\"\n\n[[site]]\nhosts = [\"b\"]\nroot = \"/elsewhere\"\n\n[[site]]\nhosts = [\"c\"]\nroot = \"/board/missing\"\n"
	_, err := ParseFor("pi.toml", []byte(data), target)
	want := `pi.toml:10: root "/elsewhere" is not on the board` + "\n" + `pi.toml:14: root "/board/missing": no such file or directory`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want\n%s", err, want)
	}
	if _, err := ParseFor("pi.toml", []byte("[server]\nhttp = \":80\"\n[[site]]\nroot = \"/board\"\n"), target); err != nil {
		t.Fatal(err)
	}
}
