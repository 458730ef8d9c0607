package serve

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"appliance/compress"
)

// representation is one file version as it is served: validators, type,
// length and, for small files, the bytes. It is computed once per version
// and knows nothing of net/http's ResponseWriter, so other transports can
// serve it too.
type representation struct {
	Name        string    // io/fs name inside the site root
	Size        int64     // length in bytes
	ModTime     time.Time // Last-Modified, whole seconds; zero if unknown
	ETag        string    // strong entity tag derived from the bytes
	ContentType string
	Data        []byte          // the whole content when small enough, else nil
	Coding      compress.Coding // Content-Encoding of these bytes
	lang        string          // the language of a variant (language.go); "" otherwise

	id     fileID
	header preparedHeader
	stream bool   // compressed per request from the file: length unknown, no ranges
	digest string // Repr-Digest of these bytes; "" for a stream

	// On the identity representation only: the codings it may be served
	// in, precompressed sidecar files, and the variants built so far.
	offered  compress.Set
	sidecars [compress.NumCodings]string
	variants [compress.NumCodings]variantSlot
	tags     atomic.Pointer[[]string] // ETags of every built representation
}

// variantSlot builds one coding's representation once per file version.
type variantSlot struct {
	once sync.Once
	rep  *representation
}

// preparedHeader holds header values built once and shared, read-only,
// by every response that serves the representation.
type preparedHeader struct {
	etag, lastModified, contentType, contentLength, contentEncoding, reprDigest []string
}

func (r *representation) prepareHeader() {
	r.header = preparedHeader{
		etag:        []string{r.ETag},
		contentType: []string{r.ContentType},
	}
	if !r.stream {
		r.header.contentLength = []string{strconv.FormatInt(r.Size, 10)}
	}
	if r.Coding != compress.Identity {
		r.header.contentEncoding = []string{r.Coding.String()}
	}
	if !r.ModTime.IsZero() {
		r.header.lastModified = []string{r.ModTime.Format(http.TimeFormat)}
	}
	if r.digest != "" {
		r.header.reprDigest = []string{r.digest}
	}
}

func (r *representation) addTag(tag string) {
	for {
		old := r.tags.Load()
		cur := []string{r.ETag}
		if old != nil {
			cur = *old
		}
		next := append(slices.Clip(cur), tag)
		if r.tags.CompareAndSwap(old, &next) {
			return
		}
	}
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
// the same tag on every machine and after every restart. The suffix tells
// the content codings of one file apart.
func etagOf(sum []byte, suffix string) string {
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + suffix + `"`
}

// loadRepresentation opens name, reads its identity from the open file and
// hashes it; files up to the cache's MaxFileBytes are kept in memory, and
// the hashes of larger ones are remembered by identity (c.sums). The
// caller, which may still change its fields, prepares its header.
func loadRepresentation(fsys fs.FS, name string, c *Cache, types map[string]string) (*representation, error) {
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
	rep := &representation{
		Name:        name,
		Size:        fi.Size(),
		ContentType: contentType(name, types),
		id:          idOf(fi),
	}
	if mt := fi.ModTime(); !mt.IsZero() && mt.Unix() > 0 {
		rep.ModTime = mt.Truncate(time.Second).UTC()
	}
	var sum [sha256.Size]byte
	if rep.Size <= c.opts.MaxFileBytes {
		rep.Data = make([]byte, rep.Size)
		if _, err := io.ReadFull(f, rep.Data); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		sum = sha256.Sum256(rep.Data)
	} else if known, ok := c.sums.get(rep.id); ok {
		sum = known
	} else {
		h := sha256.New()
		if n, err := io.Copy(h, f); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		} else if n != rep.Size {
			return nil, fmt.Errorf("%s: changed while reading", name)
		}
		h.Sum(sum[:0])
		c.sums.put(rep.id, sum)
		c.largeHashed.Add(1)
	}
	rep.ETag = etagOf(sum[:], "")
	rep.digest = reprDigestOf(sum[:])
	rep.Coding = compress.Identity
	return rep, nil
}
