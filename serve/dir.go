package serve

import (
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"appliance/internal/clock"
)

// Dir is a document root on disk. Every name is resolved through os.Root,
// so nothing outside the directory is reachable, not even through a
// symbolic link. When the configured path starts naming another directory
// (an atomic symlink swap, the usual deploy), Dir follows it within one
// check interval.
type Dir struct {
	path     string
	interval time.Duration

	mu      sync.Mutex // serialises reopening
	cur     atomic.Pointer[dirRoot]
	checked atomic.Int64 // clock.Mono of the last identity check
}

type dirRoot struct {
	root     *os.Root
	fsys     fs.FS
	dev, ino uint64
}

// OpenDir opens path as a document root; interval bounds how stale the
// view of a swapped root directory may be (0: 1 s, as the cache's
// CacheOptions.Revalidate).
func OpenDir(path string, interval time.Duration) (*Dir, error) {
	if interval <= 0 {
		interval = defaultRevalidate
	}
	d := &Dir{path: path, interval: interval}
	r, err := openDirRoot(path)
	if err != nil {
		return nil, err
	}
	d.cur.Store(r)
	d.checked.Store(clock.Mono())
	return d, nil
}

func openDirRoot(path string) (*dirRoot, error) {
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	fi, err := root.Stat(".")
	if err != nil {
		root.Close()
		return nil, err
	}
	if !fi.IsDir() {
		root.Close()
		return nil, fmt.Errorf("%s: not a directory", path)
	}
	dev, ino, _ := sysID(fi)
	return &dirRoot{root: root, fsys: root.FS(), dev: dev, ino: ino}, nil
}

// current returns the root, reopening it if the path names another
// directory now. The old root is left to the garbage collector so that
// requests still using it finish.
func (d *Dir) current() *dirRoot {
	r := d.cur.Load()
	now := clock.Mono()
	last := d.checked.Load()
	if now-last < int64(d.interval) || !d.checked.CompareAndSwap(last, now) {
		return r
	}
	fi, err := os.Stat(d.path)
	if err != nil {
		return r // keep serving what we have; a vanished root is an operator's transient
	}
	if dev, ino, _ := sysID(fi); dev == r.dev && ino == r.ino {
		return r
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if nr, err := openDirRoot(d.path); err == nil {
		d.cur.Store(nr)
		return nr
	}
	return r
}

// Recheck makes the next use look at what the path names now, without
// waiting for the interval: a deploy that swapped it says so.
func (d *Dir) Recheck() { d.checked.Store(0) }

// Open opens a file for reading; a regular file is an *os.File, so
// io.Copy to a connection uses sendfile.
func (d *Dir) Open(name string) (fs.File, error) { return d.current().fsys.Open(name) }

// Stat follows symbolic links that stay inside the root.
func (d *Dir) Stat(name string) (fs.FileInfo, error) { return fs.Stat(d.current().fsys, name) }

// Lstat does not follow a final symbolic link.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	return d.current().root.Lstat(name)
}

// ReadLink reads a symbolic link inside the root.
func (d *Dir) ReadLink(name string) (string, error) {
	return fs.ReadLink(d.current().fsys, name)
}

// ReadDir lists a directory, sorted by name.
func (d *Dir) ReadDir(name string) ([]fs.DirEntry, error) {
	return fs.ReadDir(d.current().fsys, name)
}

// Close releases the current root.
func (d *Dir) Close() error { return d.cur.Load().root.Close() }
