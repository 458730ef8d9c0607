package serve

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"time"
)

// Representation is one file version as it is served: validators, type,
// length and, for small files, the bytes. It is computed once per version
// and knows nothing of net/http's ResponseWriter, so other transports can
// serve it too.
type Representation struct {
	Name        string    // io/fs name inside the site root
	Size        int64     // length in bytes
	ModTime     time.Time // Last-Modified, whole seconds; zero if unknown
	ETag        string    // strong entity tag derived from the bytes
	ContentType string
	Data        []byte // the whole content when small enough, else nil

	id     fileID
	header preparedHeader
}

// preparedHeader holds header values built once and shared, read-only,
// by every response that serves the representation.
type preparedHeader struct {
	etag, lastModified, contentType, contentLength []string
}

// Validators returns what conditional requests are evaluated against.
func (r *Representation) Validators() Validators {
	return Validators{ETag: r.ETag, ModTime: r.ModTime}
}

// fileID identifies a file version without reading it.
type fileID struct {
	size, mtime, ctime int64
	dev, ino           uint64
	mode               fs.FileMode
}

func idOf(fi fs.FileInfo) fileID {
	dev, ino, ctime := sysID(fi)
	return fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: ctime, dev: dev, ino: ino, mode: fi.Mode()}
}

// etagOf derives a strong entity tag from content: identical bytes give
// the same tag on every machine and after every restart.
func etagOf(sum []byte) string {
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

// loadRepresentation opens name, reads its identity from the open file and
// hashes it; files up to maxData bytes are kept in memory.
func loadRepresentation(fsys fs.FS, name string, maxData int64, types map[string]string) (*Representation, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	rep := &Representation{
		Name:        name,
		Size:        fi.Size(),
		ContentType: contentType(name, types),
		id:          idOf(fi),
	}
	if mt := fi.ModTime(); !mt.IsZero() && mt.Unix() > 0 {
		rep.ModTime = mt.Truncate(time.Second).UTC()
	}
	h := sha256.New()
	if rep.Size <= maxData {
		rep.Data = make([]byte, rep.Size)
		if _, err := io.ReadFull(f, rep.Data); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		h.Write(rep.Data)
	} else if n, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	} else if n != rep.Size {
		return nil, fmt.Errorf("%s: changed while reading", name)
	}
	rep.ETag = etagOf(h.Sum(nil))
	rep.header = preparedHeader{
		etag:          []string{rep.ETag},
		contentType:   []string{rep.ContentType},
		contentLength: []string{strconv.FormatInt(rep.Size, 10)},
	}
	if !rep.ModTime.IsZero() {
		rep.header.lastModified = []string{rep.ModTime.Format(http.TimeFormat)}
	}
	return rep, nil
}
