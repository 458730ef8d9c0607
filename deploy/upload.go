package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Uploads resume inside a file, as draft-ietf-httpbis-resumable-upload
// does with its Upload-Offset field: the bytes of an upload cut off
// (the client, the network or the server gone) are kept in
// blobs/tmp/partial-SUM; the server tells how many it holds (Offset),
// and the client sends the rest from there. The SHA-256 is checked
// over the whole blob, the kept part and the rest, so a rest that does
// not belong to the kept part is refused and the part dropped. Partial
// uploads are bounded: MaxPartials per site (a new one pushes out the
// least recently written), each under MaxFileBytes, counted in the
// site's quota, and collected when not written to for BlobGrace.

const partialPrefix = "partial-"

func (s *Store) partialPath(sum string) string {
	return s.path("blobs", "tmp", partialPrefix+sum)
}

// OffsetError: an upload resumed at another offset than the bytes the
// store holds of it, Have.
type OffsetError struct{ Have int64 }

func (e *OffsetError) Error() string {
	return fmt.Sprintf("the server holds %d bytes of this upload: resume from there", e.Have)
}

// settleWait is how long a request about a blob waits for an upload of
// it to end: one cut off a moment ago is still writing what it read.
const settleWait = 2 * time.Second

// Offset is how many bytes of the blob sum the store holds: all of them
// when it is stored, what a cut-off upload left, else 0. It waits for
// an upload of it in progress to end, up to settleWait.
func (s *Store) Offset(sum string) int64 {
	if !ValidSum(sum) {
		return 0
	}
	s.settle(sum, time.Now().Add(settleWait))
	if fi, err := os.Stat(s.blobPath(sum)); err == nil {
		return fi.Size()
	}
	if fi, err := os.Stat(s.partialPath(sum)); err == nil {
		return fi.Size()
	}
	return 0
}

// Offsets are the Offset of each of sums that has a partial upload
// (waiting up to settleWait in all).
func (s *Store) Offsets(sums []string) map[string]int64 {
	out := map[string]int64{}
	deadline := time.Now().Add(settleWait)
	for _, sum := range sums {
		s.settle(sum, deadline)
		if fi, err := os.Stat(s.partialPath(sum)); err == nil && fi.Size() > 0 {
			out[sum] = fi.Size()
		}
	}
	return out
}

// partial is a kept partial upload.
type partial struct {
	sum   string
	size  int64
	mtime time.Time
}

// partials lists the partial uploads, least recently written first.
func (s *Store) partials() []partial {
	ents, _ := os.ReadDir(s.path("blobs", "tmp"))
	var out []partial
	for _, e := range ents {
		sum, ok := strings.CutPrefix(e.Name(), partialPrefix)
		if fi, err := e.Info(); ok && ValidSum(sum) && err == nil {
			out = append(out, partial{sum, fi.Size(), fi.ModTime()})
		}
	}
	slices.SortFunc(out, func(a, b partial) int { return a.mtime.Compare(b.mtime) })
	return out
}

// dropPartialLocked removes the partial upload of sum, unless it is
// being written, and gives its bytes back to the quota. Callers hold mu.
func (s *Store) dropPartialLocked(sum string) {
	if _, busy := s.writing[sum]; busy {
		return
	}
	if fi, err := os.Stat(s.partialPath(sum)); err == nil && os.Remove(s.partialPath(sum)) == nil {
		s.used -= fi.Size()
	}
}

// settle waits until no upload of sum is in progress, or deadline;
// false if one still is.
func (s *Store) settle(sum string, deadline time.Time) bool {
	for {
		s.mu.Lock()
		done, busy := s.writing[sum]
		s.mu.Unlock()
		if !busy {
			return true
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-done:
			t.Stop()
		case <-t.C:
			return false
		}
	}
}

// claim marks sum as being uploaded, after waiting up to settleWait for
// an upload of it in progress to end; false if one still is.
func (s *Store) claim(sum string) bool {
	if !s.settle(sum, time.Now().Add(settleWait)) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.writing[sum]; busy {
		return false
	}
	s.writing[sum] = make(chan struct{})
	return true
}

func (s *Store) unclaim(sum string) {
	s.mu.Lock()
	close(s.writing[sum])
	delete(s.writing, sum)
	s.mu.Unlock()
}

// makeRoom pushes out the least recently written partial uploads past
// MaxPartials - 1, before a new one of sum.
func (s *Store) makeRoom(sum string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.partials()
	for _, p := range ps[:max(0, len(ps)-(s.lim.MaxPartials-1))] {
		if p.sum != sum {
			s.dropPartialLocked(p.sum)
		}
	}
}

// ErrBusy: MaxUploads uploads are in progress, or one of the same blob.
var ErrBusy = errors.New("too many uploads in progress")

// Put stores the content r, of size bytes (-1: unknown), under sum: the
// whole content from offset 0, or, resuming a cut-off upload, the rest
// from offset, which must be the bytes the store holds (Offset; else an
// *OffsetError). The whole blob must hash to sum (else the kept part is
// dropped too); more than MaxFileBytes, or more than the quota leaves,
// is refused. It is written beside the store and renamed in when
// whole, so a blob is complete or absent; if r fails midway, what came
// is kept for a resumption.
func (s *Store) Put(sum string, offset, size int64, r io.Reader) error {
	switch {
	case !ValidSum(sum):
		return fmt.Errorf("%w blob name %q", ErrInvalid, sum)
	case offset < 0 || offset > s.lim.MaxFileBytes:
		return fmt.Errorf("%w offset %d", ErrInvalid, offset)
	case size > s.lim.MaxFileBytes-offset:
		return fmt.Errorf("%w: %d bytes, at most %d per file", ErrTooLarge, offset+size, s.lim.MaxFileBytes)
	}
	select {
	case s.uploads <- struct{}{}:
		defer func() { <-s.uploads }()
	default:
		return ErrBusy
	}
	if _, err := os.Stat(s.blobPath(sum)); err == nil {
		return nil // already here; the body is not needed
	}
	if !s.claim(sum) {
		return fmt.Errorf("%w: this content is being uploaded", ErrBusy)
	}
	defer s.unclaim(sum)
	if _, err := os.Stat(s.blobPath(sum)); err == nil {
		return nil // an upload of the same content ended meanwhile
	}
	have, err := s.resumeAt(sum, offset)
	if err != nil {
		return err
	}
	reserve := size
	if reserve < 0 {
		reserve = s.lim.MaxFileBytes - have
	}
	if err := s.reserve(reserve); err != nil {
		return err
	}
	return s.writeRest(sum, have, size, reserve, r)
}

// resumeAt returns the bytes of sum's partial upload that an upload
// from offset continues: those kept, when offset is their count (else an
// *OffsetError); none when offset is 0, dropping any kept.
func (s *Store) resumeAt(sum string, offset int64) (have int64, err error) {
	p := s.partialPath(sum)
	if fi, err := os.Stat(p); err == nil {
		have = fi.Size()
	} else {
		s.makeRoom(sum)
	}
	switch {
	case offset == 0 && have > 0: // sent whole again: start afresh
		if err := os.Remove(p); err != nil {
			return 0, err
		}
		s.reserve(-have)
		return 0, nil
	case offset != have:
		return 0, &OffsetError{Have: have}
	}
	return have, nil
}

// writeRest appends r to the have bytes kept of sum's partial upload,
// for which the quota has reserve bytes more, and moves the blob into
// the store if the whole hashes to sum (size >= 0: the bytes r must
// give). What r gave before it failed is kept for a resumption.
func (s *Store) writeRest(sum string, have, size, reserve int64, r io.Reader) error {
	p := s.partialPath(sum)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		s.reserve(-reserve)
		return err
	}
	defer f.Close()
	h := sha256.New()
	if n, err := io.Copy(h, io.LimitReader(f, have)); err != nil || n != have {
		s.reserve(-reserve)
		return fmt.Errorf("reading the kept part of %s: %d of %d bytes: %v", sum, n, have, err)
	}
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, s.lim.MaxFileBytes-have+1))
	// From here the file holds have+n bytes, of which the quota counted
	// have, and reserve more for the rest.
	drop := func(e error) error {
		os.Remove(p)
		s.reserve(-reserve - have)
		return e
	}
	switch {
	case err != nil:
		if have+n == 0 {
			return drop(err)
		}
		s.reserve(n - reserve) // kept for a resumption
		return err
	case have+n > s.lim.MaxFileBytes:
		return drop(fmt.Errorf("%w: over %d bytes per file", ErrTooLarge, s.lim.MaxFileBytes))
	case size >= 0 && n != size:
		return drop(fmt.Errorf("%w upload: %d bytes, announced %d", ErrInvalid, n, size))
	case hex.EncodeToString(h.Sum(nil)) != sum:
		if have > 0 {
			return drop(fmt.Errorf("%w upload: the %d bytes kept and the %d sent do not hash to %s; the kept part is dropped: send it whole", ErrInvalid, have, n, sum))
		}
		return drop(fmt.Errorf("%w upload: the content does not hash to %s", ErrInvalid, sum))
	}
	if err := s.install(f, p, sum); err != nil {
		return drop(err)
	}
	s.reserve(n - reserve)
	return nil
}

// install makes the whole upload f, at p, the blob sum: readable,
// synced, renamed into the store.
func (s *Store) install(f *os.File, p, sum string) error {
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.blobPath(sum)), 0o755); err != nil {
		return err
	}
	return os.Rename(p, s.blobPath(sum))
}
