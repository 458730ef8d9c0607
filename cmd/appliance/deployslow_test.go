package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"appliance/deploy"
)

// pacedReader gives data a MiB at a time, waiting every before each but
// the first: an upload that keeps making progress, slowly.
type pacedReader struct {
	data  []byte
	off   int
	every time.Duration
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.off == len(p.data) {
		return 0, io.EOF
	}
	if p.off > 0 && p.off%(1<<20) == 0 {
		time.Sleep(p.every)
	}
	end := min(len(p.data), p.off+len(b), (p.off/(1<<20)+1)<<20)
	n := copy(b, p.data[p.off:end])
	p.off += n
	return n, nil
}

// TestDeploySlowUploadOutlastsWriteTimeout: an upload that makes its
// MiB per read_timeout but takes longer than write_timeout as a whole
// is stored and answered 204, over HTTP/1.1 and HTTP/2, fast_http2 on
// and off (write_timeout counts from the request's start, and reset
// every such HTTP/2 upload, and lost its HTTP/1.1 answer); over HTTP/2,
// an upload that stops making progress is still ended. Through the
// built binary, over TLS.
func TestDeploySlowUploadOutlastsWriteTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("paced uploads take seconds")
	}
	out, err := func() ([]byte, error) {
		cmd := exec.Command(binary, "hash-password")
		cmd.Stdin = strings.NewReader("s3cret-token\n")
		return cmd.Output()
	}()
	if err != nil {
		t.Fatal(err)
	}
	for _, fastH2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast_http2=%v", fastH2), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := writeFile(t, dir, "appliance.toml", fmt.Sprintf(`[server]
https = "127.0.0.1:0"
state_dir = "state"
read_timeout = "2s"
write_timeout = "2s"
fast_http2 = %v
[[site]]
hosts = ["127.0.0.1"]
tls = "local"
deploy_token = %q
`, fastH2, strings.TrimSpace(string(out))))
			p := start(t, "-config", cfg)
			addr := httpsRe.FindStringSubmatch(p.waitLogSeen(t, "msg=serving"))[1]
			put := func(h2 bool, body io.Reader, size int64, sum string) (*http.Response, error) {
				req, _ := http.NewRequest("PUT", "https://127.0.0.1/"+deploy.Prefix[1:]+"blobs/"+sum, body)
				req.ContentLength = size
				req.Header.Set("Authorization", "Bearer s3cret-token")
				return sniClient(addr, "", h2).Do(req)
			}
			var wg sync.WaitGroup
			for _, h2 := range []bool{false, true} {
				wg.Go(func() {
					// 4 MiB, a MiB every 900 ms: about 2.7 s in all.
					data := []byte(strings.Repeat(fmt.Sprintf("paced upload h2=%v ", h2), 4<<20)[:4<<20])
					s := sha256.Sum256(data)
					sum := hex.EncodeToString(s[:])
					t0 := time.Now()
					res, err := put(h2, &pacedReader{data: data, every: 900 * time.Millisecond}, int64(len(data)), sum)
					if err != nil {
						t.Errorf("h2=%v: a paced upload of %v: %v", h2, time.Since(t0).Round(time.Millisecond), err)
						return
					}
					res.Body.Close()
					if res.StatusCode != 204 || (res.ProtoMajor == 2) != h2 {
						t.Errorf("h2=%v: a paced upload of %v: %s %s, want 204", h2, time.Since(t0).Round(time.Millisecond), res.Proto, res.Status)
					}
					if n := headOffset(t, addr, h2, sum); n != int64(len(data)) {
						t.Errorf("h2=%v: %d bytes held after the upload, want %d", h2, n, len(data))
					}
				})
			}
			wg.Go(func() {
				// A MiB, then nothing: ended by the deadlines, not held.
				data := []byte(strings.Repeat("stalled ", 1<<18))
				s := sha256.Sum256(append(data, 'x'))
				pr, pw := io.Pipe()
				defer pw.Close()
				go pw.Write(data)
				t0 := time.Now()
				res, err := put(true, pr, int64(len(data))+1, hex.EncodeToString(s[:]))
				if err == nil {
					res.Body.Close()
				}
				if d := time.Since(t0); err == nil && res.StatusCode < 400 || d > 10*time.Second {
					t.Errorf("a stalled HTTP/2 upload: %v after %v, want it ended within read_timeout + write_timeout", err, d)
				}
			})
			wg.Wait()
		})
	}
}
