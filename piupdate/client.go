package piupdate

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client drives an update through a board's admin listener.
type Client struct {
	URL   *url.URL // the admin listener: http://board:8081/
	Token string   // admin.token's
	HTTP  *http.Client
	// Progress, when set, is told of each chunk of the root sent.
	Progress func(bytes int64)
	// Poll is the wait between two status requests after the reboot
	// (default 2 s); Wait the longest wait for the board (default 5 min).
	Poll, Wait time.Duration
}

// StatusError is an answer other than the one expected.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Msg)
}

func (c *Client) do(req *http.Request, want int, out any) error {
	req.Header.Set("Authorization", "Bearer "+c.Token)
	res, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return &StatusError{res.StatusCode, strings.TrimSpace(string(msg))}
	}
	return json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(out)
}

func (c *Client) endpoint() string { return c.URL.JoinPath("update").String() }

// Status asks the board where it stands.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(), nil)
	if err != nil {
		return st, err
	}
	return st, c.do(req, http.StatusOK, &st)
}

// Send writes img's root file system to the board's other root
// partition; the board reboots into it on trial.
func (c *Client) Send(ctx context.Context, img Image) (Accepted, error) {
	var acc Accepted
	var body io.Reader = io.NewSectionReader(img.Root, 0, img.Root.Size())
	if c.Progress != nil {
		body = &progress{body, c.Progress}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.endpoint(), body)
	if err != nil {
		return acc, err
	}
	req.ContentLength = img.Root.Size()
	req.Header.Set("Content-Type", "application/vnd.squashfs")
	req.Header.Set("Content-Digest", contentDigest(img.RootSHA256))
	return acc, c.do(req, http.StatusAccepted, &acc)
}

// Await polls the board until it has rebooted (another boot ID than
// acc's) and settled: on acc.Partition committed (took is true), or
// back on the other one (the trial failed and the board rolled back).
// The boot of acc answering that no update is in progress will not
// reboot: an error at once, not after Wait.
func (c *Client) Await(ctx context.Context, acc Accepted) (st Status, took bool, err error) {
	poll, wait := cmp.Or(c.Poll, 2*time.Second), cmp.Or(c.Wait, 5*time.Minute)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	last := "no answer"
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		st, err = c.Status(rctx)
		rcancel()
		switch {
		case err != nil && ctx.Err() == nil: // not the end of the wait
			last = err.Error()
		case err != nil:
		case st.BootID == acc.BootID && !st.Updating:
			// The boot that took the update no longer reboots into it:
			// its reboot failed, or the appliance restarted before it.
			return st, false, fmt.Errorf("the board did not reboot into partition %d: it still runs partition %d and no update is in progress (the reboot failed or the appliance restarted: its log says why); nothing switched", acc.Partition, st.Partition)
		case st.BootID == acc.BootID:
			last = "not rebooted yet"
		case st.Partition == acc.Partition && st.Committed:
			return st, true, nil
		case st.Partition != acc.Partition:
			return st, false, nil
		default:
			last = fmt.Sprintf("trying partition %d, not committed yet", st.Partition)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return st, false, fmt.Errorf("the board did not settle within %s (last: %s)", wait, last)
		}
	}
}

type progress struct {
	r io.Reader
	f func(int64)
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.f(int64(n))
	return n, err
}
