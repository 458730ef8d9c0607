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
			// p is where the rest will be created: try it (access(2)
			// says yes to root anywhere, even in /proc).
			if err := canCreateIn(p); err != nil {
				return fail("cannot keep %s/ there: %v", sub, err)
			}
			return nil
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

// CheckLogFiles reports whether this process can write the files
// server.log_file and server.access_log name, as the server opens them
// at start (creating the file and the directories above it, and the
// rolled files beside it): nil when it can or none is set. It leaves
// nothing behind: an existing file is opened for appending and closed
// unwritten, a missing one is not created. The error names the key with
// its place in the file.
func (c *Config) CheckLogFiles() error {
	var errs Errors
	for _, l := range []struct{ key, path string }{
		{"server.log_file", c.Server.LogFile},
		{"server.access_log", c.Server.AccessLog},
	} {
		if l.path == "" || l.key == "server.access_log" && (l.path == "stdout" || l.path == "-") {
			continue
		}
		if err := logFileUsable(l.path); err != nil {
			errs = append(errs, &Error{File: c.file, Line: lineOf(c.lines, l.key),
				Msg: fmt.Sprintf("%s %q: %v", l.key, l.path, err)})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// logFileUsable reports whether path can be appended to, or created with
// the directories above it, and rolled (files made beside it).
func logFileUsable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return errors.New("is a directory")
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("cannot be written: %w", unwrapPath(err))
		}
		f.Close()
		if err := canCreateIn(filepath.Dir(path)); err != nil {
			return fmt.Errorf("cannot be rolled: %w", err)
		}
		return nil
	case !missing(err):
		return err
	}
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("cannot be created: %s is not a directory", p)
		case err == nil:
			if err := canCreateIn(p); err != nil {
				return fmt.Errorf("cannot be created: %w", err)
			}
			return nil
		case !missing(err):
			return fmt.Errorf("cannot be created: %w", err)
		case filepath.Dir(p) == p:
			return nil
		}
	}
}

// missing reports whether a stat failed for want of the file, or of a
// directory above it (a file is in the way: found on the way up).
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR)
}

// unwrapPath is the reason of a *fs.PathError, without its operation
// and path; other errors as they are.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// canCreateIn reports whether a directory can be made in dir, by making
// one and removing it: nothing is left behind.
func canCreateIn(dir string) error {
	d, err := os.MkdirTemp(dir, ".appliance-check-*")
	if err != nil {
		return fmt.Errorf("nothing can be made in %s: %w", dir, unwrapPath(err))
	}
	return os.Remove(d)
}
