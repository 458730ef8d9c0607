package piupdate

import (
	"appliance/internal/httpx"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClient: the client sends the root with its length and digest and
// the token, then polls until the board has rebooted and settled: on
// the new partition committed (took), or back on the old one (rolled
// back); the board's answers while it reboots (errors, the old boot, an
// uncommitted trial) only make it wait.
func TestClient(t *testing.T) {
	root := fakeSquashfs(5000)
	img := Image{Root: newSection(root), RootSHA256: sha(root)}
	for _, tc := range []struct {
		name  string
		after []State // the answers of GET /update after the PUT, the last repeated
		took  bool
	}{
		{"took", []State{{BootID: "1", Partition: 2, Committed: true}, {BootID: "2", Partition: 3, Trial: true}, {BootID: "2", Partition: 3, Trial: true, Committed: true}}, true},
		{"rolled back", []State{{BootID: "1", Partition: 2, Committed: true}, {BootID: "3", Partition: 2, Committed: true}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			polls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok" {
					http.Error(w, "token", 401)
					return
				}
				if r.Method == "PUT" {
					var body bytes.Buffer
					body.ReadFrom(r.Body)
					if want := contentDigest(sha(root)); r.Header.Get("Content-Digest") != want || r.ContentLength != 5000 || !bytes.Equal(body.Bytes(), root) {
						http.Error(w, "bad request", 400)
						return
					}
					httpx.WriteJSON(w, 202, Accepted{Partition: 3, BootID: "1"})
					return
				}
				mu.Lock()
				defer mu.Unlock()
				polls++
				if polls == 2 {
					http.Error(w, "rebooting", 502)
					return
				}
				st := tc.after[min(polls-1, len(tc.after)-1)]
				json.NewEncoder(w).Encode(Status{Version: "v", State: st, Kernel: "k", Updating: st.BootID == "1"})
			}))
			defer srv.Close()
			u, _ := url.Parse(srv.URL + "/")
			sent := int64(0)
			c := &Client{URL: u, Token: "tok", HTTP: srv.Client(), Progress: func(n int64) { sent += n }, Poll: time.Millisecond, Wait: 10 * time.Second}
			acc, err := c.Send(context.Background(), img)
			if err != nil || acc.Partition != 3 || sent != 5000 {
				t.Fatalf("send: %+v %v, %d bytes", acc, err, sent)
			}
			st, took, err := c.Await(context.Background(), acc)
			if err != nil || took != tc.took || st.BootID == "1" {
				t.Errorf("await: %+v took=%v %v", st, took, err)
			}
		})
	}
}

// TestClientWaitBounded: a board that never comes back is given up on
// after Wait, saying what it last answered.
func TestClientWaitBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(Status{State: State{BootID: "1", Partition: 2}, Updating: true})
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := &Client{URL: u, HTTP: srv.Client(), Poll: time.Millisecond, Wait: 50 * time.Millisecond}
	if _, _, err := c.Await(context.Background(), Accepted{Partition: 3, BootID: "1"}); err == nil || !strings.Contains(err.Error(), "did not settle within 50ms (last: not rebooted yet)") {
		t.Errorf("%v", err)
	}
}

// TestClientRebootFailed: the boot that took the update answering that
// no update is in progress (its reboot failed: the handler freed
// itself) ends the wait at once with an error, not after Wait.
func TestClientRebootFailed(t *testing.T) {
	polls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		polls++
		json.NewEncoder(w).Encode(Status{State: State{BootID: "1", Partition: 2, Committed: true}, Updating: polls < 3})
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := &Client{URL: u, HTTP: srv.Client(), Poll: time.Millisecond, Wait: time.Minute}
	start := time.Now()
	_, took, err := c.Await(context.Background(), Accepted{Partition: 3, BootID: "1"})
	if took || err == nil || !strings.Contains(err.Error(), "did not reboot into partition 3") || polls != 3 {
		t.Errorf("took=%v %v after %d polls", took, err, polls)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s: waited for a reboot that will not come", d)
	}
}

func newSection(b []byte) *io.SectionReader {
	return io.NewSectionReader(bytes.NewReader(b), 0, int64(len(b)))
}
