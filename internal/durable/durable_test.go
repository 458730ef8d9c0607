package durable

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFile: the content and mode written, replacing the old file,
// and no temporary file left, also when the write fails.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "root.key")
	for _, content := range []string{"old", "new content"} {
		if err := WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(name); string(b) != content {
			t.Errorf("%q, want %q", b, content)
		}
	}
	if fi, _ := os.Stat(name); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if err := WriteFile(filepath.Join(dir, "no-such-dir", "x"), nil, 0o644); err == nil {
		t.Error("a file in a missing directory written")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d entries, want only root.key: %v", len(entries), entries)
	}
}
