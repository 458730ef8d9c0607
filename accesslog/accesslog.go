// Package accesslog writes one line per request, in Apache/nginx
// "combined" format or as JSON, without ever making a request wait: lines
// go through a bounded buffer to a single writer, and when the buffer is
// full they are counted as dropped instead.
package accesslog

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"gopkg.in/natefinch/lumberjack.v2"

	"appliance/internal/clock"
	"appliance/internal/httpx"
)

// Format is how a line is written.
type Format int

const (
	Combined Format = iota // Apache/nginx combined: existing log tools read it
	JSON                   // one JSON object per line
)

// ParseFormat reads "combined" or "json".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "combined":
		return Combined, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("access log format %q: want combined or json", s)
}

// Roll bounds a log file: when a write would take it past MaxBytes, it
// is renamed with the time (access-2026-12-01T10-20-00.000.log) and a new
// one started; the newest Keep renamed files are kept, older ones
// removed. Zero fields take the defaults.
type Roll struct {
	MaxBytes int64 // rounded up to whole MiB, at least 1 MiB
	Keep     int
}

// Defaults of Roll: at most 16 MiB in each of 5 files, 80 MiB in all.
const (
	DefaultRollBytes = 16 << 20
	DefaultRollKeep  = 4
)

// RollingFile returns a writer that appends to path and rolls it as r
// says (gopkg.in/natefinch/lumberjack.v2). Close closes the file, and
// the next write opens it again: a reopen after an outside rotation.
func RollingFile(path string, r Roll) io.WriteCloser {
	if r.MaxBytes <= 0 {
		r.MaxBytes = DefaultRollBytes
	}
	if r.Keep <= 0 {
		r.Keep = DefaultRollKeep
	}
	return &lumberjack.Logger{Filename: path, MaxSize: int((r.MaxBytes + 1<<20 - 1) >> 20), MaxBackups: r.Keep}
}

// Logger is an access log sink shared by the sites that log.
type Logger struct {
	format Format
	file   io.WriteCloser // the rolling file; nil for stdout
	path   string         // file path, or "stdout"
	lines  chan *[]byte   // pooled, so that giving a line back allocates nothing
	pool   sync.Pool

	dropped atomic.Int64
	reopen  chan chan error
	done    chan struct{}
	closed  sync.Once

	now func() time.Time // the end of a request, for its duration; tests fix it
}

// defaultBuffer is how many lines may wait for the writer.
const defaultBuffer = 4096

// Open starts a logger writing to path ("stdout" for standard output,
// which journald collects under systemd), a file rolled as roll says.
func Open(path string, format Format, buffer int, roll Roll) (*Logger, error) {
	if buffer <= 0 {
		buffer = defaultBuffer
	}
	l := newLogger(path, format, buffer)
	if path != "stdout" && path != "-" {
		l.file = RollingFile(path, roll)
	}
	w, err := l.open()
	if err != nil {
		return nil, err
	}
	go l.write(w)
	return l, nil
}

func newLogger(path string, format Format, buffer int) *Logger {
	return &Logger{
		format: format, path: path, lines: make(chan *[]byte, buffer),
		reopen: make(chan chan error), done: make(chan struct{}), now: time.Now,
	}
}

func (l *Logger) open() (io.WriteCloser, error) {
	if l.path == "stdout" || l.path == "-" {
		return nopCloser{os.Stdout}, nil
	}
	// The rolling file opens on its first write (after a Close, again):
	// open it now, so that a path that cannot be written is an error at
	// start and at Reopen, not lines lost later.
	if _, err := l.file.Write(nil); err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return l.file, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// write is the single writer: it batches what is waiting and flushes
// whenever the buffer runs empty.
func (l *Logger) write(w io.WriteCloser) {
	bw := bufio.NewWriterSize(w, 64<<10)
	defer func() {
		bw.Flush()
		w.Close()
		close(l.done)
	}()
	// drain writes what is waiting; false once the logger is closed.
	drain := func() bool {
		for {
			select {
			case line, ok := <-l.lines:
				if !ok {
					return false
				}
				bw.Write(*line)
				l.put(line)
			default:
				return true
			}
		}
	}
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				return
			}
			bw.Write(*line)
			l.put(line)
			if !drain() {
				return
			}
			bw.Flush()
		case reply := <-l.reopen:
			// What was logged before the rotation belongs in the old file.
			open := drain()
			bw.Flush()
			if !open {
				reply <- nil
				return
			}
			// Close first: the rolling file then opens the path as it
			// is now (the same writer, so w stays).
			w.Close()
			_, err := l.open()
			reply <- err
		}
	}
}

// Reopen closes and reopens the file, after logrotate moved it.
func (l *Logger) Reopen() error {
	reply := make(chan error)
	select {
	case l.reopen <- reply:
		return <-reply
	case <-l.done:
		return fmt.Errorf("access log closed")
	}
}

// Close writes what is buffered and closes the file.
func (l *Logger) Close() error {
	l.closed.Do(func() { close(l.lines) })
	<-l.done
	return nil
}

// Dropped reports how many lines were lost to a full buffer.
func (l *Logger) Dropped() int64 { return l.dropped.Load() }

func (l *Logger) get() *[]byte {
	if b, ok := l.pool.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 256)
	return &b
}

func (l *Logger) put(b *[]byte) {
	if cap(*b) <= 4096 {
		l.pool.Put(b)
	}
}

// Observe calls after once next has answered each request, with what
// was sent and the site that Attribute recorded. The access log and the
// metrics share it: wrap a listener's whole handler, so that every
// response, refusals included, is seen once.
// The Recorder is only valid during after: it is reused.
func Observe(next http.Handler, after func(r *http.Request, rec *Recorder, start time.Time)) http.Handler {
	var clk clock.Clock // one system clock read instead of time.Now's two
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := clk.Now()
		rec := recorders.Get().(*Recorder)
		*rec = Recorder{ResponseWriterWrapper: httpx.ResponseWriterWrapper{ResponseWriter: w}}
		next.ServeHTTP(rec, r)
		if rec.Status == 0 {
			rec.Status = http.StatusOK
		}
		after(r, rec, start)
		*rec = Recorder{}
		recorders.Put(rec)
	})
}

// recorders spares the fast path an allocation per request.
var recorders = sync.Pool{New: func() any { return new(Recorder) }}

// Log queues one line for a request; it never waits.
func (l *Logger) Log(site string, r *http.Request, rec *Recorder, start time.Time) {
	line := l.get()
	if l.format == JSON {
		*line = l.appendJSON(*line, site, r, rec, start)
	} else {
		*line = appendCombined(*line, site, r, rec, start)
	}
	select {
	case l.lines <- line:
	default:
		l.dropped.Add(1) // never stall a request for the log
		l.put(line)
	}
}

// appendCombined writes the combined format, then the site that answered
// (its first host; "-" for none), as nginx's combined-plus-host formats:
// host - - [22/Nov/2026:21:07:50 +0000] "GET / HTTP/1.1" 200 1024 "referer" "agent" "site"
// Tools that read combined lines read these: the extra field comes last.
func appendCombined(b []byte, site string, r *http.Request, rec *Recorder, t time.Time) []byte {
	b = append(b, clientIP(r.RemoteAddr)...)
	b = append(b, " - - ["...)
	b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendEscaped(b, r.Method)
	b = append(b, ' ')
	b = appendEscaped(b, r.RequestURI)
	b = append(b, ' ')
	b = appendEscaped(b, r.Proto)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, ' ')
	if rec.Bytes == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, rec.Bytes, 10)
	}
	b = append(b, ` "`...)
	b = appendField(b, r.Header.Get("Referer"))
	b = append(b, `" "`...)
	b = appendField(b, r.Header.Get("User-Agent"))
	b = append(b, `" "`...)
	b = appendField(b, site)
	return append(b, "\"\n"...)
}

func appendField(b []byte, v string) []byte {
	if v == "" {
		return append(b, '-')
	}
	return appendEscaped(b, v)
}

// appendEscaped escapes quotes, backslashes, control and non-UTF-8 bytes
// as nginx does (\xHH), so no request can forge or break a log line.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if c >= 0x80 {
			if r, n := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError {
				b = append(b, s[i:i+n]...)
				i += n
				continue
			}
		}
		b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		i++
	}
	return b
}

func (l *Logger) appendJSON(b []byte, site string, r *http.Request, rec *Recorder, start time.Time) []byte {
	b = append(b, `{"time":`...)
	b = appendJSONString(b, start.UTC().Format(time.RFC3339Nano))
	for _, kv := range [...][2]string{
		{"remote", clientIP(r.RemoteAddr)}, {"site", site}, {"host", r.Host}, {"method", r.Method},
		{"uri", r.RequestURI}, {"proto", r.Proto},
	} {
		b = append(b, `,"`...)
		b = append(b, kv[0]...)
		b = append(b, `":`...)
		b = appendJSONString(b, kv[1])
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, rec.Bytes, 10)
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, l.now().Sub(start).Microseconds(), 10)
	b = append(b, `,"referer":`...)
	b = appendJSONString(b, r.Header.Get("Referer"))
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, r.Header.Get("User-Agent"))
	return append(b, "}\n"...)
}

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			i++
		case c < 0x80:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
		}
	}
	return append(b, '"')
}

func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// Recorder notes the status and the body bytes a handler sent, and
// which site answered.
type Recorder struct {
	httpx.ResponseWriterWrapper
	Status int
	Bytes  int64
	// Site is what Attribute recorded about the site that answered; nil
	// when none did (an unknown host, a refusal before a site was chosen).
	Site any
}

// Attribute records site on the Recorder that w is or wraps, for the
// function Observe calls after the request; without one it does nothing.
// Whatever picks the site that answers calls it, so that a single
// observer at the edge of a listener knows the site without knowing how
// it was chosen. A pointer does not allocate.
func Attribute(w http.ResponseWriter, site any) {
	for {
		switch v := w.(type) {
		case *Recorder:
			v.Site = site
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return
		}
	}
}

func (r *Recorder) WriteHeader(code int) {
	if r.Status == 0 && code >= 200 {
		r.Status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(p []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.Bytes += int64(n)
	return n, err
}

// ReadFrom keeps sendfile for the writer underneath.
func (r *Recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	n, err := r.ResponseWriterWrapper.ReadFrom(src)
	r.Bytes += n
	return n, err
}
