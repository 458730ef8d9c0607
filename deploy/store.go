package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"appliance/internal/durable"
)

// Limits bound what a client holding the deploy token can make the
// server store; zero fields take the defaults.
type Limits struct {
	MaxFiles         int           // files in a release
	MaxFileBytes     int64         // one file
	MaxSiteBytes     int64         // a release, and all the site's stored blobs together
	MaxManifestBytes int64         // one manifest, as JSON
	MaxUploads       int           // uploads in progress at once, per site
	MaxPartials      int           // cut-off uploads kept for resuming, per site
	Keep             int           // releases kept, the active one included
	BlobGrace        time.Duration // an unreferenced blob younger than this is an upload awaiting its release, not garbage
}

// The defaults of Limits: a zero field means its default.
const (
	defaultMaxFiles         = 10000
	defaultMaxFileBytes     = 64 << 20
	defaultMaxSiteBytes     = 1 << 30
	defaultMaxManifestBytes = 4 << 20
	defaultMaxUploads       = 4
	defaultMaxPartials      = 16
	defaultKeep             = 5
	defaultBlobGrace        = time.Hour
)

func (l Limits) withDefaults() Limits {
	set := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&l.MaxFileBytes, defaultMaxFileBytes)
	set(&l.MaxSiteBytes, defaultMaxSiteBytes)
	set(&l.MaxManifestBytes, defaultMaxManifestBytes)
	if l.MaxFiles <= 0 {
		l.MaxFiles = defaultMaxFiles
	}
	if l.MaxUploads <= 0 {
		l.MaxUploads = defaultMaxUploads
	}
	if l.MaxPartials <= 0 {
		l.MaxPartials = defaultMaxPartials
	}
	if l.Keep <= 0 {
		l.Keep = defaultKeep
	}
	if l.BlobGrace == 0 {
		l.BlobGrace = defaultBlobGrace
	}
	return l
}

// Release describes one release of a site.
type Release struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Files  int       `json:"files"`
	Bytes  int64     `json:"bytes"`
	Active bool      `json:"active"`
}

// record is what releases/<id>.json holds.
type record struct {
	Release
	Manifest Manifest `json:"manifest"`
}

// Store is a deployable site's directory. Changes of the releases
// (commit, rollback, pruning and garbage collection) take an exclusive
// flock on its lock file, so they are serialised between Stores of the
// same directory (after a reload) and between processes.
type Store struct {
	dir     string
	lim     Limits
	uploads chan struct{} // MaxUploads tokens

	mu      sync.Mutex
	used    int64                    // bytes of blobs, partial uploads and uploads in progress
	writing map[string]chan struct{} // blobs being uploaded; closed when done
}

// Open opens (creating it if needed) the site directory dir. A site
// never deployed serves an empty directory, dir/empty.
func Open(dir string, lim Limits) (*Store, error) {
	lim = lim.withDefaults()
	s := &Store{dir: dir, lim: lim, uploads: make(chan struct{}, lim.MaxUploads), writing: map[string]chan struct{}{}}
	for _, d := range []string{dir, s.path("blobs"), s.path("blobs", "tmp"), s.path("releases"), s.path("empty")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	err := s.locked(func() error {
		if _, err := os.Lstat(s.Current()); errors.Is(err, fs.ErrNotExist) {
			if err := s.activate("empty"); err != nil {
				return err
			}
		}
		s.cleanup()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.used, err = s.blobBytes()
	for _, p := range s.partials() {
		s.used += p.size
	}
	return s, err
}

// Current is the path of the symlink to the active release: the root to
// serve.
func (s *Store) Current() string { return s.path("current") }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *Store) blobPath(sum string) string { return s.path("blobs", sum[:2], sum) }

// locked runs f under the directory's exclusive lock.
func (s *Store) locked(f func() error) error {
	lf, err := os.OpenFile(s.path("lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	return f()
}

// cleanup removes what an interrupted deploy left: half-assembled
// releases, and a release directory or record without the other (the
// active release is never touched). Callers hold the lock.
func (s *Store) cleanup() {
	active := s.active()
	ents, _ := os.ReadDir(s.path("releases"))
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
	}
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, "."): // .tmp-ID being assembled, .ID.json.tmp* being written
			os.RemoveAll(s.path("releases", n))
		case strings.HasSuffix(n, ".json") && !names[strings.TrimSuffix(n, ".json")]:
			os.Remove(s.path("releases", n))
		case e.IsDir() && !names[n+".json"] && n != active:
			os.RemoveAll(s.path("releases", n))
		}
	}
	// Upload files of a process that died, and partial uploads not
	// resumed in time; live ones are younger.
	tmps, _ := os.ReadDir(s.path("blobs", "tmp"))
	for _, e := range tmps {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > s.lim.BlobGrace {
			os.Remove(s.path("blobs", "tmp", e.Name()))
		}
	}
}

// active is the id of the active release ("empty" before the first).
func (s *Store) active() string {
	t, err := os.Readlink(s.Current())
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// activate points current at releases/id (or at empty) in one rename,
// so every open of the root sees the old release or the new one.
func (s *Store) activate(id string) error {
	target := filepath.Join("releases", id)
	if id == "empty" {
		target = "empty"
	}
	tmp := s.path("current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.Current()); err != nil {
		return err
	}
	return durable.SyncDir(s.dir)
}

// blobBytes adds up the sizes of the stored blobs.
func (s *Store) blobBytes() (int64, error) {
	var n int64
	err := s.eachBlob(func(sum string, fi fs.FileInfo) { n += fi.Size() })
	return n, err
}

func (s *Store) eachBlob(f func(sum string, fi fs.FileInfo)) error {
	dirs, err := os.ReadDir(s.path("blobs"))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if len(d.Name()) != 2 || !d.IsDir() {
			continue
		}
		ents, _ := os.ReadDir(s.path("blobs", d.Name()))
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && ValidSum(e.Name()) {
				f(e.Name(), fi)
			}
		}
	}
	return nil
}

// Missing lists, once each and in manifest order, the content the store
// lacks for m.
func (s *Store) Missing(m Manifest) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range m.Files {
		if seen[f.SHA256] {
			continue
		}
		seen[f.SHA256] = true
		if fi, err := os.Stat(s.blobPath(f.SHA256)); err != nil || fi.Size() != f.Size {
			out = append(out, f.SHA256)
		}
	}
	return out
}

// reserve takes n bytes of the quota (gives them back when negative),
// collecting garbage once when the quota is short, then pushing out
// partial uploads.
func (s *Store) reserve(n int64) error {
	s.mu.Lock()
	fits := s.used+n <= s.lim.MaxSiteBytes || n <= 0
	if fits {
		s.used += n
	}
	s.mu.Unlock()
	if fits {
		return nil
	}
	if err := s.locked(func() error { s.collect(); return nil }); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Kept partial uploads only spare a client bytes it can send again:
	// they give way, least recently written first, to an upload the
	// quota cannot hold otherwise (else a few cut-off uploads would
	// refuse every deploy with 507 for BlobGrace). One being written,
	// the caller's own included, stays.
	for _, p := range s.partials() {
		if s.used+n <= s.lim.MaxSiteBytes {
			break
		}
		s.dropPartialLocked(p.sum)
	}
	if s.used+n > s.lim.MaxSiteBytes {
		return fmt.Errorf("%w: the site stores %d bytes of %d (its kept releases and pending uploads)", ErrQuota, s.used, s.lim.MaxSiteBytes)
	}
	s.used += n
	return nil
}

// MissingError is a commit's answer when blobs are missing (collected
// between the manifest and the commit, or never uploaded).
type MissingError struct{ Missing []string }

func (e *MissingError) Error() string {
	return fmt.Sprintf("%d blobs of the manifest are missing", len(e.Missing))
}

// ErrUnchanged: a commit of the manifest the active release has.
var ErrUnchanged = errors.New("the release is already live")

// Commit assembles the release m beside the active one, from stored
// blobs, and activates it; then it prunes releases past Keep and
// collects the blobs no kept release uses. An interrupted commit leaves
// the active release as it was. When m is the active release's manifest
// (the same files and contents; modes are not kept), nothing is made,
// so that no older release is pushed out of Keep: Commit returns the
// active release and ErrUnchanged.
func (s *Store) Commit(m Manifest) (rel Release, err error) {
	if err := m.Check(s.lim); err != nil {
		return Release{}, err
	}
	err = s.locked(func() error {
		if r, ok := s.record(s.active()); ok && sameFiles(r.Manifest, m) {
			rel = r.Release
			rel.Active = true
			return ErrUnchanged
		}
		if miss := s.Missing(m); len(miss) > 0 {
			return &MissingError{miss}
		}
		now := time.Now().UTC()
		id := now.Format("20060102T150405Z")
		for i := 1; ; i++ {
			if _, err := os.Lstat(s.path("releases", id)); errors.Is(err, fs.ErrNotExist) {
				break
			}
			id = now.Format("20060102T150405Z") + "-" + strconv.Itoa(i)
		}
		tmp := s.path("releases", ".tmp-"+id)
		if err := s.assemble(tmp, m); err != nil {
			os.RemoveAll(tmp)
			return err
		}
		rel = Release{ID: id, Time: now, Files: len(m.Files), Bytes: m.Bytes(), Active: true}
		data, err := json.Marshal(record{Release: rel, Manifest: m})
		if err != nil {
			return err
		}
		// The record first: a directory without one is an interrupted
		// deploy, which cleanup removes.
		if err := durable.WriteFile(s.path("releases", id+".json"), data, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, s.path("releases", id)); err != nil {
			return err
		}
		if err := durable.SyncDir(s.path("releases")); err != nil {
			return err
		}
		if err := s.activate(id); err != nil {
			return err
		}
		s.prune()
		s.collect()
		return nil
	})
	return rel, err
}

// assemble builds the release tree of m in dir: hard links to the blobs
// (copies where the file system has no links).
func (s *Store) assemble(dir string, m Manifest) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for _, f := range m.Files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Link(s.blobPath(f.SHA256), dst); err != nil {
			if err := copyFile(s.blobPath(f.SHA256), dst); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// record reads the record of the release id.
func (s *Store) record(id string) (record, bool) {
	var r record
	if id == "" || id == "empty" {
		return r, false
	}
	data, err := os.ReadFile(s.path("releases", id+".json"))
	if err != nil || json.Unmarshal(data, &r) != nil || r.ID != id {
		return r, false
	}
	return r, true
}

// sameFiles reports whether two manifests list the same files, in
// whatever order, with the same contents. Modes are not compared: every
// file is stored and served 0644 whatever the manifest says, so a
// change of mode alone would make a release that serves the same.
func sameFiles(a, b Manifest) bool {
	if len(a.Files) != len(b.Files) {
		return false
	}
	byPath := func(x, y File) int { return strings.Compare(x.Path, y.Path) }
	fa, fb := slices.Clone(a.Files), slices.Clone(b.Files)
	slices.SortFunc(fa, byPath)
	slices.SortFunc(fb, byPath)
	return slices.EqualFunc(fa, fb, func(x, y File) bool {
		return x.Path == y.Path && x.Size == y.Size && x.SHA256 == y.SHA256
	})
}

// records reads every release's record, newest first.
func (s *Store) records() []record {
	ents, _ := os.ReadDir(s.path("releases"))
	var out []record
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		if fi, err := os.Stat(s.path("releases", id)); err != nil || !fi.IsDir() {
			continue
		}
		data, err := os.ReadFile(s.path("releases", e.Name()))
		if err != nil {
			continue
		}
		var r record
		if json.Unmarshal(data, &r) != nil || r.ID != id {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b record) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

// Releases lists the kept releases, newest first.
func (s *Store) Releases() []Release {
	active := s.active()
	var out []Release
	for _, r := range s.records() {
		r.Active = r.ID == active
		out = append(out, r.Release)
	}
	return out
}

// ErrNoPrevious: rollback from the oldest kept release.
var ErrNoPrevious = errors.New("no earlier release to roll back to")

// Rollback activates the release before the active one.
func (s *Store) Rollback() (rel Release, err error) {
	err = s.locked(func() error {
		recs := s.records()
		active := s.active()
		i := slices.IndexFunc(recs, func(r record) bool { return r.ID == active })
		if i < 0 || i+1 >= len(recs) {
			return ErrNoPrevious
		}
		rel = recs[i+1].Release
		rel.Active = true
		return s.activate(rel.ID)
	})
	return rel, err
}

// prune removes the releases past the newest Keep, never the active one.
// Callers hold the lock.
func (s *Store) prune() {
	active := s.active()
	for i, r := range s.records() {
		if i >= s.lim.Keep && r.ID != active {
			os.Remove(s.path("releases", r.ID+".json"))
			os.RemoveAll(s.path("releases", r.ID))
		}
	}
}

// collect removes the blobs no kept release lists, except those younger
// than BlobGrace (uploads whose release is not committed yet), and the
// partial uploads not written to for BlobGrace. Callers hold the lock.
func (s *Store) collect() {
	used := map[string]bool{}
	for _, r := range s.records() {
		for _, f := range r.Manifest.Files {
			used[f.SHA256] = true
		}
	}
	var freed int64
	s.eachBlob(func(sum string, fi fs.FileInfo) {
		if !used[sum] && time.Since(fi.ModTime()) >= s.lim.BlobGrace {
			if os.Remove(s.blobPath(sum)) == nil {
				freed += fi.Size()
			}
		}
	})
	s.mu.Lock()
	s.used -= freed
	for _, p := range s.partials() {
		if time.Since(p.mtime) >= s.lim.BlobGrace {
			s.dropPartialLocked(p.sum)
		}
	}
	s.mu.Unlock()
}

// Used reports the bytes of stored blobs.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}
