package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"appliance/deploy"
)

// cutProxy forwards TCP connections to target, counting the bytes that
// clients send; while armed, the first connection to have carried cutAt
// bytes from its client is closed there (both ways), and cut is closed.
type cutProxy struct {
	ln     net.Listener
	target string
	cutAt  int64
	armed  atomic.Bool
	cut    chan struct{}
	sent   atomic.Int64
}

func newCutProxy(t *testing.T, target string, cutAt int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, cutAt: cutAt, cut: make(chan struct{})}
	p.armed.Store(true)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *cutProxy) pipe(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() {
		io.Copy(c, s)
		c.Close()
	}()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		k, err := c.Read(buf)
		if k > 0 && p.armed.Load() && n+int64(k) >= p.cutAt && p.armed.CompareAndSwap(true, false) {
			s.Write(buf[:p.cutAt-n])
			p.sent.Add(p.cutAt - n)
			close(p.cut)
			return
		}
		if k > 0 {
			if _, err := s.Write(buf[:k]); err != nil {
				return
			}
			n += int64(k)
			p.sent.Add(int64(k))
		}
		if err != nil {
			s.(*net.TCPConn).CloseWrite()
			<-make(chan struct{}) // wait: the copy the other way ends the pipe
		}
	}
}

// headOffset asks the server at addr, over HTTP/2 or HTTP/1.1, how many
// bytes of the blob sum it holds (HEAD, Upload-Offset).
func headOffset(t *testing.T, addr string, h2 bool, sum string) int64 {
	t.Helper()
	req, _ := http.NewRequest("HEAD", "https://127.0.0.1/"+deploy.Prefix[1:]+"blobs/"+sum, nil)
	req.Header.Set("Authorization", "Bearer s3cret-token")
	res, err := sniClient(addr, "", h2).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	n, err := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if res.StatusCode != 204 || err != nil || (res.ProtoMajor == 2) != h2 {
		t.Fatalf("HEAD of the blob: %s %s, Upload-Offset %q", res.Proto, res.Status, res.Header.Get("Upload-Offset"))
	}
	return n
}

var resumedRe = regexp.MustCompile(`uploaded [12] of 2 files \((\d+) of \d+ bytes; (\d+) more resumed`)

// TestDeployResumesInsideAFile: an 8 MiB upload cut off after 5 MiB (a
// proxy closes the connection, the client is killed) is resumed by the
// next deploy, which sends only the rest; the file served is whole, with
// the ETag of its content. Through the built binary (HTTP/2) and the
// deploy client over HTTP/1.1, fast_http1 on and off.
func TestDeployResumesInsideAFile(t *testing.T) {
	const size, cutAt = 8 << 20, 5 << 20
	big := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(big)
	sum := sha256.Sum256(big)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	for _, fast := range []bool{true, false} {
		for _, h2 := range []bool{true, false} {
			t.Run(fmt.Sprintf("fast_http1=%v,h2=%v", fast, h2), func(t *testing.T) {
				s := startDeploySite(t, fast, "1s")
				src := t.TempDir()
				os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644)
				writeFile(t, src, "index.html", "hello")
				p := newCutProxy(t, s.httpsAt, cutAt)
				_, port, _ := net.SplitHostPort(p.ln.Addr().String())
				siteURL := "https://127.0.0.1:" + port + "/"

				var sent, resumed, kept int64
				if h2 {
					// The binary, killed at the cut.
					cmd := exec.Command(binary, "deploy", "-ca", s.ca, src, siteURL)
					cmd.Env = append(os.Environ(), "APPLIANCE_DEPLOY_TOKEN=s3cret-token")
					var out bytes.Buffer
					cmd.Stdout, cmd.Stderr = &out, &out
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					var wg sync.WaitGroup
					wg.Go(func() {
						select {
						case <-p.cut:
							cmd.Process.Kill()
						case <-t.Context().Done():
						}
					})
					if err := cmd.Wait(); err == nil {
						t.Fatalf("the deploy survived its cut:\n%s", out.String())
					}
					wg.Wait()
					kept = headOffset(t, s.httpsAt, h2, hex.EncodeToString(sum[:]))
					p.sent.Store(0)
					o := s.deploy(t, src, siteURL)
					m := resumedRe.FindStringSubmatch(o)
					if m == nil {
						t.Fatalf("the second deploy resumed nothing:\n%s", o)
					}
					sent, _ = strconv.ParseInt(m[1], 10, 64)
					resumed, _ = strconv.ParseInt(m[2], 10, 64)
				} else {
					// The deploy client over HTTP/1.1, stopped at the cut.
					local, err := deploy.Scan(src)
					if err != nil {
						t.Fatal(err)
					}
					c := &deploy.Client{Site: mustURL(siteURL), Token: "s3cret-token", HTTP: sniClient(p.ln.Addr().String(), "", false)}
					ctx, cancel := context.WithCancel(t.Context())
					go func() {
						<-p.cut
						cancel()
					}()
					if _, err := c.Deploy(ctx, local); err == nil {
						t.Fatal("the deploy survived its cut")
					}
					kept = headOffset(t, s.httpsAt, h2, hex.EncodeToString(sum[:]))
					p.sent.Store(0)
					res, err := c.Deploy(t.Context(), local)
					if err != nil {
						t.Fatal(err)
					}
					sent, resumed = res.UploadedBytes, res.ResumedBytes
				}
				got := p.sent.Load()
				if kept != resumed {
					t.Errorf("HEAD of the blob after the cut: Upload-Offset %d; the deploy then resumed %d", kept, resumed)
				}
				t.Logf("cut at %d bytes: the retried deploy sent %d bytes of file (%d resumed), %d bytes in all to the server", cutAt, sent, resumed, got)
				if sent+resumed != size+5 && sent+resumed != size {
					t.Errorf("sent %d + resumed %d, want the %d bytes of big.bin (and index.html's 5)", sent, resumed, size)
				}
				if resumed < cutAt-64<<10 || got > size-cutAt+128<<10 {
					t.Errorf("the retried deploy resumed %d bytes and sent %d in all; want about %d and %d", resumed, got, cutAt, size-cutAt)
				}
				for _, h2 := range []bool{false, true} {
					body, tag, status, err := get(sniClient(s.httpsAt, "", h2), s.url()+"big.bin")
					if status != 200 || !bytes.Equal([]byte(body), big) || tag != etag {
						t.Errorf("h2=%v: big.bin %d, %d bytes, ETag %s, %v; want 200, the %d bytes, %s", h2, status, len(body), tag, err, size, etag)
					}
				}
			})
		}
	}
}
