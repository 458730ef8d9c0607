package piupdate

import (
	"appliance/internal/httpx"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Status is what GET /update answers.
type Status struct {
	Version string `json:"version"`
	State
	Kernel   string `json:"kernel_sha256"` // the running slot's vmlinuz
	Updating bool   `json:"updating"`      // a new slot is being written, or the board reboots into it
}

// Accepted is what PUT /update answers (202): the partition the board
// reboots into on trial, and the boot it leaves.
type Accepted struct {
	Partition int    `json:"partition"`
	BootID    string `json:"boot_id"`
}

// Handler serves GET /update (Status) and PUT /update (a new root
// file system, the squashfs of partition 2 of an image, with its
// SHA-256 in Content-Digest; its /boot has the slot's kernel) on the
// admin listener. The caller authenticates (admin.token). One update
// at a time.
type Handler struct {
	Board   *Board
	Version string
	Log     *slog.Logger
	// Reboot, when set, replaces Board.TryBoot (tests).
	Reboot func(context.Context) error
	// Timeout bounds the reading of a new root (default 10 minutes).
	Timeout time.Duration

	busy   atomic.Bool
	kernel struct {
		mu  sync.Mutex
		sum string // "" until hashed
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.Board.Present() {
		http.Error(w, "not a gokrazy board: update the appliance with the package manager or the image it came in", http.StatusNotImplemented)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.status(w)
	case http.MethodPut:
		h.put(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
	}
}

func (h *Handler) status(w http.ResponseWriter) {
	st, err := h.Board.State()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// The kernel does not change while the board runs: hashed once
	// (seconds on a Raspberry Pi 3).
	k, err := h.kernelSum(st)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, Status{Version: h.Version, State: st, Kernel: k, Updating: h.busy.Load()})
}

// kernelSum is the SHA-256 of the boot partition's kernel, hashed once
// it could be (an error is not kept: the next request tries again).
func (h *Handler) kernelSum(st State) (string, error) {
	h.kernel.mu.Lock()
	defer h.kernel.mu.Unlock()
	if h.kernel.sum == "" {
		sum, err := h.Board.Kernel(st)
		if err != nil {
			return "", err
		}
		h.kernel.sum = sum
	}
	return h.kernel.sum, nil
}

func (h *Handler) put(w http.ResponseWriter, r *http.Request) {
	if !h.busy.CompareAndSwap(false, true) {
		http.Error(w, "an update is in progress", http.StatusConflict)
		return
	}
	rebooting := false
	defer func() {
		if !rebooting {
			h.busy.Store(false)
		}
	}()
	want, err := ParseContentDigest(r.Header.Get("Content-Digest"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case r.ContentLength < 0:
		http.Error(w, "Content-Length is needed: the root file system's size", http.StatusLengthRequired)
		return
	case r.ContentLength > RootBytes:
		http.Error(w, fmt.Sprintf("a root file system of %d bytes: the root partition holds %d", r.ContentLength, RootBytes), http.StatusRequestEntityTooLarge)
		return
	}
	st, err := h.Board.State()
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNoSlots) || errors.Is(err, ErrBootConfig) {
			code = http.StatusConflict
		}
		http.Error(w, err.Error(), code)
		return
	}
	if st.Trial {
		http.Error(w, fmt.Sprintf("this boot tries slot %d and has not committed it: wait until it does, or until the board returns to slot %d", st.Partition, other(st.Partition)), http.StatusConflict)
		return
	}
	if err := h.Board.checkBoot(st); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	// The target is never the root mounted on /: the kernel takes the
	// last root= of its command line, this program the first.
	if n, err := h.Board.rootPartition(st.disk); err == nil && n != st.Partition {
		http.Error(w, fmt.Sprintf("the kernel command line names root partition %d, but partition %d is mounted on /: nothing written (two root= in cmdline.txt?)", st.Partition, n), http.StatusConflict)
		return
	}
	body, err := squashfsHeader(r.Body, r.ContentLength)
	if err != nil {
		http.Error(w, "not a root file system: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Nothing may try the target while it is written: tryboot.txt left
	// by an update whose reboot failed goes first, and the target's
	// slot with it (config.txt names the running slot: checkBoot).
	if err := h.Board.clearTrial(st); err != nil {
		h.Log.Error("update: clearing the other slot", "err", err)
		http.Error(w, "clearing the other slot: "+err.Error(), http.StatusInternalServerError)
		return
	}
	// Writing a card takes longer than the admin listener's write
	// timeout allows an answer; a client that stops sending (gone
	// without a word) holds the update no longer than Timeout.
	timeout := cmp.Or(h.Timeout, 10*time.Minute)
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(timeout))
	rc.SetWriteDeadline(time.Now().Add(timeout + time.Minute))
	target := other(st.Partition)
	got, err := h.Board.writeRoot(st, body, r.ContentLength)
	switch {
	case errors.Is(err, ErrTooLarge):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		h.Log.Error("update: writing the root file system", "partition", target, "err", err)
		http.Error(w, "writing partition "+fmt.Sprint(target)+": "+err.Error(), http.StatusInternalServerError)
		return
	case got != want:
		h.Log.Warn("update: hash mismatch: nothing switched", "partition", target, "sha256", got, "want", want)
		http.Error(w, fmt.Sprintf("partition %d holds a root file system whose SHA-256 is %s, not %s: nothing switched", target, got, want), http.StatusBadRequest)
		return
	}
	if err := h.Board.installSlot(st, target); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNotBootable) {
			code = http.StatusUnprocessableEntity
		}
		h.Log.Error("update: writing the slot's kernel", "slot", target, "err", err)
		http.Error(w, fmt.Sprintf("writing slot %d's kernel: %v: nothing switched", target, err), code)
		return
	}
	h.Log.Info("update: new root file system and kernel written; rebooting to try them", "slot", target, "sha256", got, "bytes", r.ContentLength)
	httpx.WriteJSON(w, http.StatusAccepted, Accepted{Partition: target, BootID: st.BootID})
	rc.Flush()
	rebooting = true
	reboot := h.Reboot
	if reboot == nil {
		reboot = h.Board.TryBoot
	}
	go func() { // the answer is flushed
		if err := reboot(context.Background()); err != nil {
			h.Log.Error("update: reboot with tryboot: nothing switched; a new update writes the slot again", "err", err)
			h.busy.Store(false)
		}
	}()
}

// ParseContentDigest returns the hex SHA-256 of a Content-Digest header
// (RFC 9530 2): sha-256=:BASE64:, among other algorithms or alone.
func ParseContentDigest(v string) (string, error) {
	for _, m := range strings.Split(v, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(m), "=")
		if !ok || !strings.EqualFold(alg, "sha-256") {
			continue
		}
		b64, ok := strings.CutPrefix(val, ":")
		if b64, ok2 := strings.CutSuffix(b64, ":"); ok && ok2 {
			if sum, err := base64.StdEncoding.DecodeString(b64); err == nil && len(sum) == 32 {
				return hex.EncodeToString(sum), nil
			}
		}
		return "", fmt.Errorf("Content-Digest: %q is not sha-256=:<32 bytes in base64>:", m)
	}
	return "", errors.New("Content-Digest: sha-256=:<base64>: is needed: the root file system's SHA-256")
}

// contentDigest is the Content-Digest header of a hex SHA-256.
func contentDigest(sum string) string {
	b, _ := hex.DecodeString(sum)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(b) + ":"
}
