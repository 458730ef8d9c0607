package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// Command is the configuration of `appliance serve [DIR] [-listen ADDR]`
// without a file: dir as one catch-all site or, for "", the embedded
// demo site; on listen, or defaultHTTP for "".
func Command(dir, listen string) (*Config, error) {
	const where = "appliance serve"
	if listen == "" {
		listen = defaultHTTP
	} else if err := checkAddr(listen); err != nil {
		return nil, Errors{{File: where, Msg: "-listen: " + err.Error()}}
	}
	if dir == "" {
		c := Default()
		c.Server.HTTP = listen
		return c, nil
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	c := &Config{Server: Server{HTTP: listen}, Sites: []Site{{Root: root}}}
	c.applyDefaults()
	v := &validator{file: where}
	c.validate(v)
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return c, nil
}

// CheckStateDir reports whether this process can keep what the sites
// need in server.state_dir (the local CA, the ACME account and
// certificates): nil when it can or no site needs it. The error names
// server.state_dir with its place in the file.
func (c *Config) CheckStateDir() error {
	var subs []string
	for i := range c.Sites {
		switch c.Sites[i].TLS {
		case "local":
			subs = append(subs, "local-ca")
		case "acme":
			subs = append(subs, "acme")
		}
		if c.Sites[i].Deployed() {
			subs = append(subs, "sites")
		}
	}
	slices.Sort(subs)
	for _, sub := range slices.Compact(subs) {
		if err := c.StateDirUsable(sub); err != nil {
			return err
		}
	}
	return nil
}

// StateDirUsable reports whether this process can create or use the
// directory sub of server.state_dir: the directory is writable, or the
// nearest one above it that exists is, and the files in it are readable.
func (c *Config) StateDirUsable(sub string) error {
	dir := c.Server.StateDir
	fail := func(format string, args ...any) error {
		return Errors{{File: c.file, Line: lineOf(c.lines, "server.state_dir"),
			Msg: fmt.Sprintf("server.state_dir %q: ", dir) + fmt.Sprintf(format, args...)}}
	}
	if c.file == "" {
		fail = func(format string, args ...any) error {
			return fmt.Errorf("server.state_dir %q: %s", dir, fmt.Sprintf(format, args...))
		}
	}
	user := fmt.Sprintf("this user (uid %d)", os.Geteuid())
	want := filepath.Join(dir, sub)
	for p := want; ; {
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return fail("cannot keep %s/ there: %s is not a directory", sub, p)
		case err == nil && unix.Access(p, unix.W_OK|unix.X_OK) != nil:
			return fail("cannot keep %s/ there: %s is not writable by %s; run as the user the server runs as, or set server.state_dir", sub, p, user)
		case err == nil && p == want:
			entries, err := os.ReadDir(p)
			if err != nil {
				return fail("%v", err)
			}
			for _, e := range entries {
				f := filepath.Join(p, e.Name())
				if unix.Access(f, unix.R_OK) != nil {
					return fail("%s is not readable by %s", f, user)
				}
			}
			return nil
		case err == nil:
			return nil // p is where the rest will be created
		case errors.Is(err, fs.ErrNotExist):
			up := filepath.Dir(p)
			if up == p {
				return nil
			}
			p = up
		default:
			return fail("cannot keep %s/ there: %v", sub, err)
		}
	}
}
