package piupdate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const testCmdline = "console=tty1 root=PARTUUID=abcd1234-02 init=/gokrazy/init rootwait panic=10 oops=panic"

func TestRewriteCmdline(t *testing.T) {
	padded := testCmdline + CmdlinePad + "\n"
	for _, tc := range []struct {
		name, in string
		part     int
		trial    bool
		want     string // "" an error
	}{
		{"trial from 2", padded, 2, true, testCmdline + " " + trialToken + "\n"},
		{"commit 3", testCmdline + " gokrazy.switch_on_boot=1    \n", 3, false,
			strings.Replace(testCmdline, "-02", "-03", 1) + strings.Repeat(" ", 29) + "\n"},
		{"trial from 3 after gokrazy's token", strings.Replace(testCmdline, "-02", "-03", 1) + " gokrazy.switch_on_boot=1    \n", 3, true,
			strings.Replace(testCmdline, "-02", "-03", 1) + " " + trialToken + " \n"},
		{"no room: an old image", testCmdline + "\n", 2, true, ""},
		{"no root=", "console=tty1 init=/gokrazy/init" + CmdlinePad + "\n", 2, true, ""},
		{"root= by device name", "root=/dev/mmcblk0p2" + CmdlinePad + "\n", 3, false, ""},
	} {
		got, err := rewriteCmdline([]byte(tc.in), tc.part, tc.trial)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: %q, want an error", tc.name, got)
		case tc.want != "" && (err != nil || string(got) != tc.want):
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		case err == nil && len(got) != len(tc.in):
			t.Errorf("%s: %d bytes, was %d", tc.name, len(got), len(tc.in))
		}
	}
	if d := parseCmdline("a appliance.trial_deadline=30s b").Deadline(); d != 30*time.Second {
		t.Errorf("deadline %s", d)
	}
	if d := parseCmdline("appliance.trial_deadline=-1s").Deadline(); d != DefaultDeadline {
		t.Errorf("deadline %s", d)
	}
}

// fakeSquashfs is n bytes that start with a squashfs superblock saying
// n bytes are used.
func fakeSquashfs(n int) []byte {
	b := make([]byte, n)
	copy(b, "hsqs")
	binary.LittleEndian.PutUint16(b[28:], 4)
	binary.LittleEndian.PutUint64(b[40:], uint64(n))
	for i := 96; i < n; i++ {
		b[i] = byte(i * 7)
	}
	return b
}

// bootFAT makes a boot partition as the builder does (FAT16, one FAT)
// with cmdline.txt and vmlinuz (three clusters and more).
func bootFAT(t testing.TB, dir string, kernel []byte) string {
	for _, tool := range []string{"mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages dosfstools, mtools)", tool)
		}
	}
	img := filepath.Join(dir, "boot.img")
	os.WriteFile(filepath.Join(dir, "cmdline.txt"), []byte(testCmdline+CmdlinePad+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "vmlinuz"), kernel, 0o644)
	for _, c := range [][]string{
		{"mkfs.vfat", "-C", "-F", "16", "-f", "1", "-s", "1", "-n", "BOOT", img, "2100"},
		{"mcopy", "-Q", "-i", img, filepath.Join(dir, "cmdline.txt"), filepath.Join(dir, "vmlinuz"), "::/"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c[0], err, out)
		}
	}
	return img
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestReadImage: the root is partition 2's squashfs, bytes_used long;
// the kernel's hash follows vmlinuz's clusters.
func TestReadImage(t *testing.T) {
	dir := t.TempDir()
	kernel := bytes.Repeat([]byte("kernel "), 30000)
	boot, _ := os.ReadFile(bootFAT(t, dir, kernel))
	root := fakeSquashfs(10000)
	img := testImage(boot, root)
	got, err := ReadImage(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if got.Root.Size() != 10000 || got.RootSHA256 != sha(root) || got.Kernel != sha(kernel) {
		t.Errorf("%d bytes, root %s kernel %s; want root %s kernel %s", got.Root.Size(), got.RootSHA256, got.Kernel, sha(root), sha(kernel))
	}
	for name, bad := range map[string][]byte{
		"cut short":    img[:len(img)-len(root)], // inside the root, its partition 8 KiB longer
		"no MBR":       make([]byte, 4096),
		"not squashfs": testImage(boot, make([]byte, 4096)),
		"empty":        nil,
	} {
		if _, err := ReadImage(bytes.NewReader(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// testImage lays out an image: MBR, boot at sector 1, root after it
// (its partition 8 KiB longer than root), no perm.
func testImage(boot, root []byte) []byte {
	rootStart := 1 + int64(len(boot))/Sector
	img := make([]byte, (rootStart+int64(len(root))/Sector+16)*Sector+int64(len(root)%Sector))
	copy(img[Sector:], boot)
	copy(img[rootStart*Sector:], root)
	for i, p := range [][2]int64{{1, int64(len(boot)) / Sector}, {rootStart, int64(len(img))/Sector - rootStart}} {
		e := img[446+16*i:]
		e[4] = 0x83
		binary.LittleEndian.PutUint32(e[8:], uint32(p[0]))
		binary.LittleEndian.PutUint32(e[12:], uint32(p[1]))
	}
	img[510], img[511] = 0x55, 0xaa
	return img
}

// fakeBoard is a board in a directory: the card's partitions as files
// (disk1 the boot FAT, disk2 and disk3 the roots), a kernel command
// line, a boot ID, and a Unix socket standing for gokrazy's.
func fakeBoard(t *testing.T, proc string) *Board {
	dir := t.TempDir()
	boot := bootFAT(t, dir, []byte("kernel"))
	os.Rename(boot, filepath.Join(dir, "disk1"))
	for _, p := range []string{"disk2", "disk3"} {
		os.WriteFile(filepath.Join(dir, p), make([]byte, 64<<10), 0o600)
	}
	os.WriteFile(filepath.Join(dir, "cmdline"), []byte(proc+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "boot_id"), []byte("boot-1\n"), 0o644)
	ln, err := net.Listen("unix", filepath.Join(dir, "gk.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &Board{Socket: filepath.Join(dir, "gk.sock"), ProcCmdline: filepath.Join(dir, "cmdline"), BootIDFile: filepath.Join(dir, "boot_id"), Disk: filepath.Join(dir, "disk")}
}

// setCmdlineFile writes txt over cmdline.txt in place, as an editor on
// a computer or gokrazy's init would.
func (b *Board) setCmdlineFile(t *testing.T, txt string) {
	_, off, err := b.cmdlineTxt(b.Disk)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(b.Disk+"1", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(txt), off); err != nil {
		t.Fatal(err)
	}
}

// putRoot sends root to h as appliance update does: its length and
// Content-Digest.
func putRoot(h *Handler, root []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest("PUT", "/update", bytes.NewReader(root))
	r.Header.Set("Content-Digest", contentDigest(sha(root)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func (b *Board) cmdlineFile(t *testing.T) string {
	txt, _, err := b.cmdlineTxt(b.Disk)
	if err != nil {
		t.Fatal(err)
	}
	return string(txt)
}

// TestHandler: a root file system is written to the partition not
// running, checked, the trial token set, and the board rebooted; bad
// requests get the right 4xx and change nothing.
func TestHandler(t *testing.T) {
	board := fakeBoard(t, testCmdline)
	rebooted := make(chan struct{}, 1)
	h := &Handler{Board: board, Version: "v1", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Reboot: func(context.Context) error { rebooted <- struct{}{}; return nil }}
	before := board.cmdlineFile(t)
	root := fakeSquashfs(20000)
	put := func(body []byte, digest string, length int64) *httptest.ResponseRecorder {
		r := httptest.NewRequest("PUT", "/update", bytes.NewReader(body))
		r.ContentLength = length
		if digest != "" {
			r.Header.Set("Content-Digest", digest)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	good := contentDigest(sha(root))
	for _, tc := range []struct {
		name   string
		body   []byte
		digest string
		length int64
		want   int
		msg    string
	}{
		{"no digest", root, "", 20000, 400, "Content-Digest: sha-256=:<base64>: is needed"},
		{"bad digest", root, "sha-256=:abc:", 20000, 400, "is not sha-256"},
		{"no length", root, good, -1, 411, "Content-Length is needed"},
		{"over the root partition's 256 MiB", root, good, RootBytes + 1, 413, "the root partition holds 268435456"},
		{"over this partition", fakeSquashfs(65<<10 + 96), contentDigest(sha(fakeSquashfs(65<<10 + 96))), 65<<10 + 96, 413, "larger than the root partition"},
		{"not squashfs", make([]byte, 20000), good, 20000, 400, "not a root file system"},
		{"length disagrees", root, good, 19999, 400, "the squashfs says it is 20000 bytes long"},
		{"another hash", root, contentDigest(sha([]byte("other"))), 20000, 400, "nothing switched"},
	} {
		w := put(tc.body, tc.digest, tc.length)
		if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.msg) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, w.Code, w.Body.String(), tc.want, tc.msg)
		}
		if after := board.cmdlineFile(t); after != before {
			t.Fatalf("%s: cmdline.txt changed: %q", tc.name, after)
		}
	}
	// cmdline.txt edited on a computer, its padding lost: refused before
	// anything is written.
	board.setCmdlineFile(t, strings.Replace(testCmdline, "panic=10", "panic=10 "+strings.Repeat("x", 20), 1)+"       \n")
	os.WriteFile(board.Disk+"3", make([]byte, 64<<10), 0o600)
	if w := put(root, good, int64(len(root))); w.Code != 409 || !strings.Contains(w.Body.String(), "cmdline.txt has no room") {
		t.Errorf("no room in cmdline.txt: %d %q", w.Code, w.Body.String())
	}
	if written, _ := os.ReadFile(board.Disk + "3"); !bytes.Equal(written, make([]byte, 64<<10)) {
		t.Error("partition 3 was written")
	}
	board.setCmdlineFile(t, before)
	w := put(root, good, int64(len(root)))
	if w.Code != 202 || !strings.Contains(w.Body.String(), `{"partition":3,"boot_id":"boot-1"}`) {
		t.Fatalf("good update: %d %q", w.Code, w.Body.String())
	}
	written, _ := os.ReadFile(board.Disk + "3")
	if !bytes.Equal(written[:len(root)], root) {
		t.Error("partition 3 does not hold the new root")
	}
	if after := board.cmdlineFile(t); after != testCmdline+" "+trialToken+"\n" {
		t.Errorf("cmdline.txt: %q", after)
	}
	<-rebooted
	if w := put(root, good, int64(len(root))); w.Code != 409 || !strings.Contains(w.Body.String(), "an update is in progress") {
		t.Errorf("while rebooting: %d %q", w.Code, w.Body.String())
	}
	r := httptest.NewRequest("GET", "/update", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	want := fmt.Sprintf(`{"version":"v1","boot_id":"boot-1","partition":2,"trial":false,"committed":true,"kernel_sha256":"%s","updating":true}`, sha([]byte("kernel")))
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != want {
		t.Errorf("GET: %d %s\nwant %s", w.Code, w.Body.String(), want)
	}
}

// TestTrialCommit: on the trial boot (the token in /proc/cmdline, root=
// still the old partition), an update is refused until the new root
// is committed; Commit rewrites root= to it; then an update goes to
// the old partition.
func TestTrialCommit(t *testing.T) {
	board := fakeBoard(t, testCmdline+" "+trialToken)
	// What gokrazy's init leaves before it switches.
	board.setCmdlineFile(t, testCmdline+" "+switchedToken+"   \n")
	h := &Handler{Board: board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reboot: func(context.Context) error { return nil }}
	root := fakeSquashfs(4096)
	put := func() *httptest.ResponseRecorder { return putRoot(h, root) }
	if w := put(); w.Code != 409 || !strings.Contains(w.Body.String(), "this boot tries partition 3 and has not committed it") {
		t.Fatalf("uncommitted trial: %d %q", w.Code, w.Body.String())
	}
	st, _ := board.State()
	if !st.Trial || st.Partition != 3 || st.Committed {
		t.Fatalf("state %+v", st)
	}
	if ok, err := board.Commit(); !ok || err != nil {
		t.Fatalf("commit: %v %v", ok, err)
	}
	if got := board.cmdlineFile(t); got != strings.Replace(testCmdline, "-02", "-03", 1)+CmdlinePad+"\n" {
		t.Errorf("committed cmdline.txt %q", got)
	}
	if ok, err := board.Commit(); ok || err != nil {
		t.Errorf("second commit: %v %v", ok, err)
	}
	if w := put(); w.Code != 202 || !strings.Contains(w.Body.String(), `"partition":2`) {
		t.Fatalf("after the commit: %d %q", w.Code, w.Body.String())
	}
	if got := board.cmdlineFile(t); got != strings.Replace(testCmdline, "-02", "-03", 1)+" "+trialToken+"\n" {
		t.Errorf("cmdline.txt %q", got)
	}
}

// TestNotABoard: without gokrazy's socket, 501.
func TestNotABoard(t *testing.T) {
	h := &Handler{Board: Gokrazy()}
	h.Board.Socket = filepath.Join(t.TempDir(), "none.sock")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("PUT", "/update", nil))
	if w.Code != http.StatusNotImplemented || !strings.Contains(w.Body.String(), "not a gokrazy board") {
		t.Errorf("%d %q", w.Code, w.Body.String())
	}
}

func FuzzReadImage(f *testing.F) {
	f.Add(testImage(make([]byte, 4096), fakeSquashfs(1024)))
	f.Add(make([]byte, 512))
	// A boot partition as mkfs.vfat writes it, cut after the kernel.
	boot, _ := os.ReadFile(bootFAT(f, f.TempDir(), bytes.Repeat([]byte("k"), 3000)))
	f.Add(testImage(boot[:64<<10], fakeSquashfs(1024)))
	f.Fuzz(func(t *testing.T, img []byte) {
		ReadImage(bytes.NewReader(img))
		kernelSHA256(bytes.NewReader(img))
	})
}

func FuzzParseContentDigest(f *testing.F) {
	f.Add(contentDigest(sha(nil)))
	f.Add("sha-512=:AAAA:, sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:")
	f.Fuzz(func(t *testing.T, v string) {
		if sum, err := ParseContentDigest(v); err == nil && len(sum) != 64 {
			t.Errorf("%q: %q", v, sum)
		}
	})
}

func FuzzRewriteCmdline(f *testing.F) {
	f.Add(testCmdline+CmdlinePad+"\n", 3, true)
	f.Fuzz(func(t *testing.T, in string, part int, trial bool) {
		part = 2 + part&1
		out, err := rewriteCmdline([]byte(in), part, trial)
		if err != nil {
			return
		}
		if len(out) != len(in) {
			t.Fatalf("%q -> %q", in, out)
		}
		if _, p, err := parseCmdline(string(out)).root(); err != nil || p != part || parseCmdline(string(out)).has(trialToken) != trial {
			t.Fatalf("%q -> %q", in, out)
		}
	})
}

// cutBody is a request body whose client goes away after n bytes.
type cutBody struct {
	r io.Reader
	n int
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("the client went away")
	}
	n, err := c.r.Read(p[:min(len(p), c.n)])
	c.n -= n
	return n, err
}

// TestUpdateAfterFailedReboot: an update whose reboot failed leaves the
// trial token in cmdline.txt (the new root is tried at the next boot);
// the next update clears it before it writes that partition again, so
// that a power cut or a client gone midway never leaves a half-written
// root for the next boot to try.
func TestUpdateAfterFailedReboot(t *testing.T) {
	board := fakeBoard(t, testCmdline)
	before := board.cmdlineFile(t)
	h := &Handler{Board: board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Reboot: func(context.Context) error { return errors.New("gokrazy did not answer") }}
	root := fakeSquashfs(20000)
	put := func(body io.Reader) int {
		r := httptest.NewRequest("PUT", "/update", body)
		r.ContentLength = int64(len(root))
		r.Header.Set("Content-Digest", contentDigest(sha(root)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := put(bytes.NewReader(root)); code != 202 {
		t.Fatalf("first update: %d", code)
	}
	for h.busy.Load() { // until the failed reboot frees the handler
		runtime.Gosched()
	}
	if got := board.cmdlineFile(t); !strings.Contains(got, trialToken) {
		t.Fatalf("after the failed reboot: %q", got)
	}
	if code := put(&cutBody{bytes.NewReader(root), 10000}); code != 500 {
		t.Fatalf("update cut after 10000 of 20000 bytes: %d", code)
	}
	if got := board.cmdlineFile(t); got != before {
		t.Errorf("cmdline.txt while partition 3 holds half a root: %q, want %q", got, before)
	}
}

// sparse is a volume of zeros but for the blocks it holds, by offset.
type sparse map[int64][]byte

func (s sparse) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	for o, b := range s {
		if o < off+int64(len(p)) && o+int64(len(b)) > off {
			copy(p[max(o-off, 0):], b[max(off-o, 0):])
		}
	}
	return len(p), nil
}

// TestFATClusters: a boot sector claiming 130 million clusters (a FAT
// of 65535 sectors of 4 KiB, consistent) is not FAT16, and is refused
// before its 248 MiB table is read: FAT16 has at most 65524.
func TestFATClusters(t *testing.T) {
	b := make([]byte, Sector)
	le := binary.LittleEndian
	le.PutUint16(b[11:], 4096) // bytes per sector
	b[13] = 1                  // sectors per cluster
	le.PutUint16(b[14:], 1)    // reserved sectors
	b[16] = 1                  // FATs
	le.PutUint16(b[17:], 16)   // root entries
	le.PutUint16(b[22:], 65535)
	le.PutUint32(b[32:], 65537+130_000_000)
	b[510], b[511] = 0x55, 0xaa
	entry := make([]byte, 32)
	copy(entry, "VMLINUZ    ")
	le.PutUint16(entry[26:], 2)
	le.PutUint32(entry[28:], 100)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, err := kernelSHA256(sparse{0: b, (1 + 65535) * 4096: entry})
	runtime.ReadMemStats(&m1)
	if err == nil || !strings.Contains(err.Error(), "130000000 clusters") {
		t.Errorf("err %v", err)
	}
	if n := m1.TotalAlloc - m0.TotalAlloc; n > 1<<20 {
		t.Errorf("allocated %d bytes", n)
	}
}

// TestSwitchFailed: the trial token in /proc/cmdline, but gokrazy's init
// could not switch (the new root did not mount) and the old root runs:
// not a trial boot, nothing to commit (the firmware would boot a root
// that never ran), and an update goes to the other partition again.
func TestSwitchFailed(t *testing.T) {
	board := fakeBoard(t, testCmdline+" "+trialToken)
	board.root = func(string) (int, error) { return 2, nil }
	board.setCmdlineFile(t, testCmdline+" "+switchedToken+"   \n")
	before := board.cmdlineFile(t)
	if st, err := board.State(); err != nil || st.Trial || st.Partition != 2 || !st.Committed {
		t.Fatalf("state %+v %v", st, err)
	}
	if ok, err := board.Commit(); ok || err != nil {
		t.Fatalf("commit: %v %v", ok, err)
	}
	if got := board.cmdlineFile(t); got != before {
		t.Fatalf("cmdline.txt %q", got)
	}
	h := &Handler{Board: board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reboot: func(context.Context) error { return nil }}
	w := putRoot(h, fakeSquashfs(4096))
	if w.Code != 202 || !strings.Contains(w.Body.String(), `"partition":3`) {
		t.Fatalf("update: %d %q", w.Code, w.Body.String())
	}
	// The real test: / is on this process's root device, neither of the
	// fake board's partitions (files).
	board.root = nil
	if _, err := board.rootPartition(board.Disk); err == nil {
		t.Error("a root partition among files")
	}
}

// TestRootPartition: / is found on a partition by its device number (a
// device node made for it: root only, / on a block device).
func TestRootPartition(t *testing.T) {
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil || unix.Major(root.Dev) == 0 {
		t.Skip("/ is not on a block device")
	}
	disk := filepath.Join(t.TempDir(), "disk")
	if err := unix.Mknod(disk+"3", unix.S_IFBLK|0o600, int(root.Dev)); err != nil {
		t.Skipf("mknod: %v", err)
	}
	os.WriteFile(disk+"2", nil, 0o600)
	if n, err := (&Board{}).rootPartition(disk); n != 3 || err != nil {
		t.Errorf("%d %v, want 3", n, err)
	}
}

// TestDropCache: what writeRoot wrote and synced leaves the page cache
// before it is read back, so that the SHA-256 is the card's.
func TestDropCache(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "root")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 1 << 20
	f.Write(fakeSquashfs(size))
	f.Sync()
	resident := func() int {
		m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), size, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			t.Fatal(e)
		}
		n := 0
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
	if n := resident(); n == 0 {
		t.Skip("the file system keeps no written pages in the cache")
	}
	if err := dropCache(f, size); err != nil {
		t.Fatal(err)
	}
	if n := resident(); n != 0 {
		t.Errorf("%d pages of the written root still cached", n)
	}
}

// TestFindDisk: the card is the one disk with root='s signature; two
// (a copy of the card on a USB drive) are refused, not one taken.
func TestFindDisk(t *testing.T) {
	dir := t.TempDir()
	b := &Board{SysBlock: filepath.Join(dir, "sys"), Dev: filepath.Join(dir, "dev")}
	os.Mkdir(b.SysBlock, 0o755)
	os.Mkdir(b.Dev, 0o755)
	disk := func(name string, sig uint32) {
		mbr := make([]byte, Sector)
		binary.LittleEndian.PutUint32(mbr[440:], sig)
		os.WriteFile(filepath.Join(b.Dev, name), mbr, 0o600)
		os.WriteFile(filepath.Join(b.SysBlock, name), nil, 0o600)
	}
	disk("loop0", 0)
	disk("mmcblk0", 0xabcd1234)
	os.WriteFile(filepath.Join(b.SysBlock, "zram0"), nil, 0o600) // no node
	if dev, err := b.findDisk("abcd1234"); dev != filepath.Join(b.Dev, "mmcblk0") || err != nil {
		t.Errorf("one card: %q %v", dev, err)
	}
	if _, err := b.findDisk("00000001"); err == nil || !strings.Contains(err.Error(), "no disk with signature 00000001") {
		t.Errorf("no card: %v", err)
	}
	disk("sda", 0xabcd1234)
	if dev, err := b.findDisk("abcd1234"); err == nil || !strings.Contains(err.Error(), "the same signature abcd1234") {
		t.Errorf("two cards: %q %v", dev, err)
	}
}

// TestRunningRootNotWritten: /proc/cmdline's first root= names 2 but
// partition 3 is mounted on / (the kernel took a second root=): the
// update is refused before the running root is written.
func TestRunningRootNotWritten(t *testing.T) {
	board := fakeBoard(t, testCmdline+" root=PARTUUID=abcd1234-03")
	board.root = func(string) (int, error) { return 3, nil }
	h := &Handler{Board: board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reboot: func(context.Context) error { return nil }}
	w := putRoot(h, fakeSquashfs(4096))
	if w.Code != 409 || !strings.Contains(w.Body.String(), "partition 3 is mounted on /") {
		t.Errorf("%d %q", w.Code, w.Body.String())
	}
	if written, _ := os.ReadFile(board.Disk + "3"); !bytes.Equal(written, make([]byte, 64<<10)) {
		t.Error("the running root was written")
	}
}

// TestStalledClient: a client that stops sending midway (gone without
// closing) holds the update for Timeout, then gets a 500; the next
// update goes through.
func TestStalledClient(t *testing.T) {
	board := fakeBoard(t, testCmdline)
	h := &Handler{Board: board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Timeout: 200 * time.Millisecond,
		Reboot: func(context.Context) error { return nil }}
	srv := httptest.NewServer(h)
	defer srv.Close()
	root := fakeSquashfs(20000)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /update HTTP/1.1\r\nHost: board\r\nContent-Length: %d\r\nContent-Digest: %s\r\n\r\n", len(root), contentDigest(sha(root)))
	c.Write(root[:10000])
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a failure, not a hang
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || res.StatusCode != 500 {
		t.Fatalf("stalled upload: %v %v", res, err)
	}
	req, _ := http.NewRequest("PUT", srv.URL+"/update", bytes.NewReader(root))
	req.Header.Set("Content-Digest", contentDigest(sha(root)))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 202 {
		t.Fatalf("next update: %v %v", res, err)
	}
}

// TestKernelErrorNotKept: a kernel that cannot be read makes
// GET /update fail, and the next GET, once it can be, answers.
func TestKernelErrorNotKept(t *testing.T) {
	board := fakeBoard(t, testCmdline)
	h := &Handler{Board: board, Version: "v1", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	get := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/update", nil))
		return w.Code
	}
	boot := board.Disk + "1"
	mren := func(from, to string) {
		if out, err := exec.Command("mren", "-i", boot, from, to).CombinedOutput(); err != nil {
			t.Fatalf("mren: %v %s", err, out)
		}
	}
	mren("::/vmlinuz", "::/vmlinux")
	if code := get(); code != 500 {
		t.Fatalf("without a kernel: %d, want 500", code)
	}
	mren("::/vmlinux", "::/vmlinuz")
	if code := get(); code != 200 {
		t.Fatalf("with it back: %d, want 200", code)
	}
}

// pause is an empty reader that takes its time: in an io.MultiReader,
// a pause in the upload.
type pause time.Duration

func (p pause) Read([]byte) (int, error) {
	time.Sleep(time.Duration(p))
	return 0, io.EOF
}

// TestSlowUploadAnswered: an update that takes longer than the server's
// WriteTimeout (70 s on the admin listener) still gets its 202: the
// handler moves the write deadline past Timeout.
func TestSlowUploadAnswered(t *testing.T) {
	board := fakeBoard(t, testCmdline)
	h := &Handler{Board: board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reboot: func(context.Context) error { return nil }}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	defer srv.Close()
	root := fakeSquashfs(20000)
	req, _ := http.NewRequest("PUT", srv.URL+"/update", io.MultiReader(bytes.NewReader(root[:10000]), pause(400*time.Millisecond), bytes.NewReader(root[10000:])))
	req.ContentLength = int64(len(root))
	req.Header.Set("Content-Digest", contentDigest(sha(root)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("an upload longer than WriteTimeout: %v", err)
	}
	defer res.Body.Close()
	if body, _ := io.ReadAll(res.Body); res.StatusCode != 202 || !strings.Contains(string(body), `"partition":3`) {
		t.Fatalf("an upload longer than WriteTimeout: %d %q", res.StatusCode, body)
	}
}
