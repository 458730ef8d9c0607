package main

import (
	"log/slog"
	"sync"
	"time"
)

// Kinds of notices: what clients cause and the operator should see,
// without letting a flood of them flood the log.
const (
	noticeUnknownSNI  = "TLS handshake refused: no site has the server name (SNI) the client asked for"
	noticeNoSNI       = "TLS handshake refused: the client sent no server name (SNI) and no site has the address it connected to"
	noticeUnknownHost = "request for a host no site serves: 404"
	noticeMisdirected = "request for another site than the connection's TLS handshake chose: 421"
	noticeProxyHeader = "connection refused for its PROXY protocol header"
)

// noticeEvery is how often a kind of notice is logged at most.
var noticeEvery = 10 * time.Second

// notices logs events that clients can cause as often as they like (a
// handshake for a name no site has, a request for an unknown host): at
// most one line per kind every noticeEvery, the next one carrying the
// count of those suppressed in between. It holds one entry per kind, and
// kinds are the constants above: nothing a client sends makes it grow.
type notices struct {
	log   *slog.Logger
	now   func() time.Time
	mu    sync.Mutex
	kinds map[string]*noticeKind
}

type noticeKind struct {
	last       time.Time
	suppressed int64
}

func newNotices(log *slog.Logger) *notices {
	return &notices{log: log, now: time.Now, kinds: map[string]*noticeKind{}}
}

// warn logs kind with attrs, unless a line of that kind went out less
// than noticeEvery ago: then it only counts.
func (n *notices) warn(kind string, attrs ...any) {
	now := n.now()
	n.mu.Lock()
	k := n.kinds[kind]
	if k == nil {
		k = &noticeKind{}
		n.kinds[kind] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < noticeEvery {
		k.suppressed++
		n.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	n.mu.Unlock()
	n.log.Warn(kind, append(attrs, "suppressed_since_last", suppressed)...)
}

// clip shortens what a client sent for a log line.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
