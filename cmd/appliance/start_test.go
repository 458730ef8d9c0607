package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestFailedStartReleases: a start that fails after binding the
// listeners (on the admin listener's address, taken, or on a pid_file it
// cannot write) releases all it acquired: both listeners are closed and
// the pid file is gone.
func TestFailedStartReleases(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct{ name, admin, pidFile string }{
		{"admin", taken.Addr().String(), "appliance.pid"},
		{"pid_file", "", "no-such-dir/appliance.pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "root/index.html", "hello")
			plain, secure, pidFile := freeAddr(t), freeAddr(t), filepath.Join(dir, tc.pidFile)
			admin := ""
			if tc.admin != "" {
				admin = fmt.Sprintf("[admin]\nlisten = %q\n", tc.admin)
			}
			path := writeFile(t, dir, "appliance.toml", fmt.Sprintf("[server]\nhttp = %q\nhttps = %q\nstate_dir = %q\npid_file = %q\n%s[[site]]\nhosts = [\"a.test\"]\nroot = %q\ntls = \"off\"\n",
				plain, secure, filepath.Join(dir, "state"), pidFile, admin, filepath.Join(dir, "root")))
			s := loadServer(t, path)
			t.Cleanup(func() { closeAll(s.closers) })
			if err := s.run(context.Background(), nil, nil, nil); err == nil {
				t.Fatal("run started")
			}
			for _, addr := range []string{plain, secure} {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("%s still bound after the failed start: %v", addr, err)
					continue
				}
				ln.Close()
			}
			if _, err := os.Stat(pidFile); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("pid file left behind: %v", err)
			}
		})
	}
}
