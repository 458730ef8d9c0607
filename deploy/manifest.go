// Package deploy publishes a site's content from a client over HTTPS:
// content-addressed blobs, releases assembled beside the one being
// served and activated by one atomic symlink swap, a bounded history for
// rollback, and the client that talks to it. It owns the layout of a
// deployable site's directory under the server's state directory:
//
//	sites/<site>/blobs/ab/ab12...   uploaded files, named by SHA-256
//	sites/<site>/blobs/tmp/partial-ab12...  an upload cut off, kept to resume
//	sites/<site>/releases/<id>/     a release: hard links to blobs
//	sites/<site>/releases/<id>.json its manifest, time, files and bytes
//	sites/<site>/current            symlink to releases/<id>: the root served
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode/utf8"
)

// File is one entry of a manifest: a regular file of the release.
type File struct {
	Path   string `json:"path"`   // slash-separated, relative to the site root
	Size   int64  `json:"size"`   // bytes
	Mode   uint32 `json:"mode"`   // permission bits only (0644); informational: files are stored 0644
	SHA256 string `json:"sha256"` // lower-case hex of the content's SHA-256
}

// Manifest lists every file of a release.
type Manifest struct {
	Files []File `json:"files"`
}

// Bytes is the total size of the files.
func (m Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Errors of manifests and uploads that the handler maps to statuses.
var (
	ErrInvalid  = errors.New("invalid")           // 400
	ErrTooLarge = errors.New("over a size limit") // 413
	ErrQuota    = errors.New("over the quota")    // 507
)

// maxPathBytes bounds one path in a manifest (Linux's PATH_MAX is 4096;
// a URL path over 2048 bytes is refused by the server anyway).
const maxPathBytes = 1024

// ParseManifest reads a JSON manifest of at most lim.MaxManifestBytes
// and checks it against lim: file count, per-file size, total size, and
// that every path is a canonical relative path that stays in the root,
// listed once, and no file is also another's directory.
func ParseManifest(r io.Reader, lim Limits) (Manifest, error) {
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxManifestBytes+1))
	if err != nil {
		return Manifest{}, err
	}
	if int64(len(data)) > lim.MaxManifestBytes {
		return Manifest{}, fmt.Errorf("%w: manifest over %d bytes", ErrTooLarge, lim.MaxManifestBytes)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w manifest: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Manifest{}, fmt.Errorf("%w manifest: data after the object", ErrInvalid)
	}
	return m, m.Check(lim)
}

// Check validates a manifest against lim (see ParseManifest).
func (m Manifest) Check(lim Limits) error {
	lim = lim.withDefaults()
	if len(m.Files) > lim.MaxFiles {
		return fmt.Errorf("%w: %d files, at most %d", ErrTooLarge, len(m.Files), lim.MaxFiles)
	}
	var total int64
	files := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if err := checkPath(f.Path); err != nil {
			return err
		}
		if files[f.Path] {
			return fmt.Errorf("%w path %q: listed twice", ErrInvalid, f.Path)
		}
		files[f.Path] = true
		if !ValidSum(f.SHA256) {
			return fmt.Errorf("%w file %q: sha256 %q is not 64 lower-case hex digits", ErrInvalid, f.Path, f.SHA256)
		}
		if f.Mode&^0o777 != 0 {
			return fmt.Errorf("%w file %q: mode %#o is not a regular file's permissions", ErrInvalid, f.Path, f.Mode)
		}
		if f.Size < 0 {
			return fmt.Errorf("%w file %q: negative size", ErrInvalid, f.Path)
		}
		if f.Size > lim.MaxFileBytes {
			return fmt.Errorf("%w: file %q has %d bytes, at most %d", ErrTooLarge, f.Path, f.Size, lim.MaxFileBytes)
		}
		if total += f.Size; total > lim.MaxSiteBytes {
			return fmt.Errorf("%w: the files add up to more than %d bytes", ErrQuota, lim.MaxSiteBytes)
		}
	}
	// A file cannot also be a directory of another file.
	for p := range files {
		for i := strings.LastIndexByte(p, '/'); i > 0; i = strings.LastIndexByte(p[:i], '/') {
			if files[p[:i]] {
				return fmt.Errorf("%w path %q: %q is a file, not a directory", ErrInvalid, p, p[:i])
			}
		}
	}
	return nil
}

// checkPath refuses a path that is not canonical and relative (no
// leading slash, no empty, . or .. segment), or holds a backslash, a
// control character or invalid UTF-8: nothing can leave the root.
func checkPath(p string) error {
	switch {
	case len(p) > maxPathBytes:
		return fmt.Errorf("%w path: over %d bytes", ErrInvalid, maxPathBytes)
	case !utf8.ValidString(p): // before fs.ValidPath, which refuses it too but would say otherwise
		return fmt.Errorf("%w path %q: invalid UTF-8", ErrInvalid, p)
	case !fs.ValidPath(p) || p == ".":
		return fmt.Errorf("%w path %q: want a relative path without empty, . or .. segments", ErrInvalid, p)
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
		return fmt.Errorf("%w path %q: control character or backslash", ErrInvalid, p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if len(seg) > 255 {
			return fmt.Errorf("%w path %q: a name over 255 bytes", ErrInvalid, p)
		}
	}
	return nil
}

// ValidSum reports whether s is a SHA-256 in lower-case hex.
func ValidSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
