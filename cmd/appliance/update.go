package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"appliance/piupdate"
)

// updateArgs wants the image and the admin listener's URL.
func updateArgs(inv *invocation, stderr io.Writer) (int, bool) {
	if len(inv.pos) != 2 {
		return usageError(stderr, "update: want the image and the board's admin URL: update IMAGE URL"), false
	}
	return 0, true
}

// updateCommand runs update IMAGE URL, with the token from
// APPLIANCE_ADMIN_TOKEN: it sends the image's root file system and
// waits for the board to run it, or to roll back (status 1).
func updateCommand(inv *invocation, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "appliance update: %v\n", err)
		return 1
	}
	u, token, err := updateTarget(inv.pos[1])
	if err != nil {
		return fail(err)
	}
	if ip := net.ParseIP(u.Hostname()); u.Scheme == "http" && u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fmt.Fprintf(stderr, "appliance update: %s is plain HTTP: the admin token and the image cross the network in the clear (a trusted LAN only)\n", u.Host)
	}
	f, err := os.Open(inv.pos[0])
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	img, err := piupdate.ReadImage(f)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", inv.pos[0], err))
	}
	c := &piupdate.Client{URL: u, Token: token, HTTP: &http.Client{Transport: &http.Transport{
		Proxy:                 updateProxy,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: 10 * time.Minute, // the board writes its card before it answers
	}}}
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		return fail(err)
	}
	if st.Trial {
		return fail(fmt.Errorf("the board tries slot %d and has not committed it yet: try again when it has, or has rolled back", st.Partition))
	}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		bar := progressbar.NewOptions64(img.Root.Size(), progressbar.OptionSetWriter(stderr), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("sending the root file system"), progressbar.OptionClearOnFinish())
		c.Progress = func(n int64) { bar.Add64(n) }
	}
	acc, err := c.Send(ctx, img)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%s: root file system written to partition %d (sha256 %s), its kernel to slot %d; the board reboots to try them\n", u.Host, acc.Partition, img.RootSHA256, acc.Partition)
	final, took, err := c.Await(ctx, acc)
	if err != nil {
		return fail(err)
	}
	if !took {
		fmt.Fprintf(stdout, "rolled back: partition %d did not become healthy in time; the board runs %s from partition %d again\n", acc.Partition, final.Version, final.Partition)
		return 1
	}
	fmt.Fprintf(stdout, "updated: the board runs %s from partition %d\n", final.Version, final.Partition)
	if final.Kernel != st.Kernel {
		fmt.Fprintf(stdout, "kernel: sha256 %.12s, was %.12s\n", final.Kernel, st.Kernel)
	}
	return 0
}

// updateProxy is the proxy of HTTPS_PROXY and NO_PROXY for an https://
// admin URL (CONNECT: the proxy sees the board's name only), and none
// for plain http://: HTTP_PROXY would hand the admin token and the
// image to the proxy in the clear.
func updateProxy(r *http.Request) (*url.URL, error) {
	if r.URL.Scheme != "https" {
		return nil, nil
	}
	return http.ProxyFromEnvironment(r)
}

// updateTarget is the admin listener's URL, checked, and the token
// from APPLIANCE_ADMIN_TOKEN.
func updateTarget(raw string) (*url.URL, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, "", fmt.Errorf("%s: want the admin listener's URL, http://board:8081/", u.Redacted())
	}
	token := os.Getenv("APPLIANCE_ADMIN_TOKEN")
	if token == "" {
		return nil, "", errors.New("set APPLIANCE_ADMIN_TOKEN to the board's admin token (admin.token is its hash)")
	}
	return u, token, nil
}

// A trial boot is committed once the appliance has answered its own
// probes for commitStable in a row, probed every commitEvery: one that
// crashes, or stops answering, soon after it starts is not kept. It
// stops trying after commitGiveUp (75 s), before init's deadline
// (piupdate.DefaultDeadline, 90 s) reboots the board to the old slot.
const (
	commitStable = 10 * time.Second
	commitEvery  = 2 * time.Second
	commitGiveUp = piupdate.DefaultDeadline - 15*time.Second
)

// commitTrial, on the trial boot of a new slot, commits it once this
// appliance has served for commitStable: the board boots it from now
// on (package piupdate).
func (s *server) commitTrial(board *piupdate.Board) {
	if !board.Present() {
		return
	}
	if st, err := board.State(); err != nil || !st.Trial { // Trial: config.txt boots another slot, not yet committed
		return
	}
	err := stableFor(func() error {
		a, secure := s.probeTarget()
		if a == nil {
			return errors.New("no listener")
		}
		return probe(a, secure, 5*time.Second)
	}, commitStable, commitEvery, commitGiveUp)
	if err != nil {
		s.log.Error("update: this trial boot does not serve steadily: not committed; the board returns to the old slot (kernel and root) at the deadline", "err", err)
		return
	}
	switch ok, err := board.Commit(); {
	case err != nil:
		s.log.Error("update: commit", "err", err)
	case ok:
		s.log.Info("update: served steadily on the trial boot: committed; the board boots this slot (kernel and root) from now on", "for", commitStable)
	}
}

// stableFor calls probe every every until it has passed for stable in a
// row (a failure starts the count again), or gives up after giveUp with
// the last failure.
func stableFor(probe func() error, stable, every, giveUp time.Duration) error {
	start := time.Now()
	var since time.Time // of the current run of passes; zero: none
	var last error
	for {
		now := time.Now()
		if err := probe(); err != nil {
			since, last = time.Time{}, err
		} else if since.IsZero() {
			since = now
		}
		if !since.IsZero() && now.Sub(since) >= stable {
			return nil
		}
		if now.Sub(start) >= giveUp {
			if last == nil {
				last = errors.New("not long enough")
			}
			return fmt.Errorf("not %s in a row within %s: %w", stable, giveUp, last)
		}
		time.Sleep(every)
	}
}
