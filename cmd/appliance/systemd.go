package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// notify sends a state to systemd's NOTIFY_SOCKET; without one it does
// nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "err", err)
	}
}

// activated returns the listening sockets systemd passed (LISTEN_FDS),
// by FileDescriptorName. A single unnamed socket is taken as "http".
func activated() (map[string]net.Listener, error) {
	named, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	out := map[string]net.Listener{}
	for name, lns := range named {
		for _, ln := range lns {
			if ln == nil {
				continue // not a stream socket
			}
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("socket activation: two sockets named %q", name)
			}
			out[name] = ln
		}
	}
	if len(out) == 1 && out["http"] == nil && out["https"] == nil {
		for name, ln := range out {
			delete(out, name)
			out["http"] = ln
		}
	}
	return out, nil
}

// watchdog pings systemd at half of WATCHDOG_USEC for as long as a real
// request over the listener gets an HTTP answer: a wedged accept loop or
// handler stops the pings and systemd restarts the service.
func watchdog(ctx context.Context, log *slog.Logger, target func() (net.Addr, bool)) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		if a, secure := target(); a == nil {
			notify(log, daemon.SdNotifyWatchdog) // no listener of ours to probe
		} else if err := probe(a, secure, interval/2); err != nil {
			log.Error("health probe failed; withholding the watchdog ping", "err", err)
		} else {
			notify(log, daemon.SdNotifyWatchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// healthHost is the Host (and, over TLS, the server name) of health
// probes: easy to spot in access logs, and never a site's.
const healthHost = "appliance.health.invalid"

// probe sends one request to the listener and waits for a status line.
// Over TLS (secure), a handshake refused with an alert (no site for
// the probe's name) also shows that the server is answering.
func probe(addr net.Addr, secure bool, timeout time.Duration) error {
	target := addr.String()
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		target = net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
		if ta.IP.To4() == nil {
			target = net.JoinHostPort("::1", fmt.Sprint(ta.Port))
		}
	}
	c, err := net.DialTimeout("tcp", target, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if secure {
		// Liveness, not identity; the name marks the probe's handshakes,
		// which the server does not log when no site has it.
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: healthHost, NextProtos: []string{"http/1.1"}})
		var remote *net.OpError
		if err := tc.Handshake(); errors.As(err, &remote) && remote.Op == "remote error" {
			return nil // the server answered with a TLS alert
		} else if err != nil {
			return err
		}
		c = tc
	}
	if _, err := io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: "+healthHost+"\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodHead})
	if err != nil {
		return err
	}
	res.Body.Close()
	return nil
}

// newLogger writes text logs to w; under journald (JOURNAL_STREAM set)
// without our own timestamps and with <N> syslog levels, which journald
// turns into priorities.
func newLogger(w io.Writer) *slog.Logger {
	if os.Getenv("JOURNAL_STREAM") == "" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(&journalHandler{w: w, mu: &sync.Mutex{}})
}

type journalHandler struct {
	w  io.Writer
	mu *sync.Mutex
	// with are the WithAttrs and WithGroup calls in their order, replayed
	// on each record's text handler: attributes added after a group are
	// in it, and nested groups keep every prefix ("a.b.key").
	with []journalWith
}

// journalWith is one WithGroup (group set) or WithAttrs call.
type journalWith struct {
	group string
	attrs []slog.Attr
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	var buf bytes.Buffer
	inner := slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}})
	var ih slog.Handler = inner
	for _, w := range h.with {
		if w.group != "" {
			ih = ih.WithGroup(w.group)
		} else {
			ih = ih.WithAttrs(w.attrs)
		}
	}
	if err := ih.Handle(context.Background(), r); err != nil {
		return err
	}
	prio := "<6>" // info
	switch {
	case r.Level >= slog.LevelError:
		prio = "<3>"
	case r.Level >= slog.LevelWarn:
		prio = "<4>"
	case r.Level < slog.LevelInfo:
		prio = "<7>"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, prio+strings.TrimPrefix(buf.String(), " "))
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	return h.and(journalWith{attrs: as})
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h // as slog.Handler asks
	}
	return h.and(journalWith{group: name})
}

// and returns a copy of h with w after its own calls.
func (h *journalHandler) and(w journalWith) *journalHandler {
	n := *h
	n.with = append(h.with[:len(h.with):len(h.with)], w)
	return &n
}
