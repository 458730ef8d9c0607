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
	"io/fs"
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
	"testing/fstest"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const testCmdline = "console=tty1 root=PARTUUID=abcd1234-02 init=/gokrazy/init rootwait panic=10 oops=panic"

const testConfig = "arm_control=0x200\nenable_uart=0\nkernel=vmlinuz\n\n[all]\nos_prefix=slot2/\n"

func TestSlotCmdline(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		part     int
		want     string // "" an error
	}{
		{"slot 3", testCmdline + "\n", 3, strings.Replace(testCmdline, "-02", "-03", 1) + "\n"},
		{"the owner's console kept, gokrazy's tokens dropped", "console=serial0,115200 " + testCmdline + " gokrazy.try_boot_inactive=1 gokrazy.switch_on_boot=1   \n", 3,
			"console=serial0,115200 " + strings.Replace(testCmdline, "-02", "-03", 1) + "\n"},
		{"slot 2 from 3", strings.Replace(testCmdline, "-02", "-03", 1), 2, testCmdline + "\n"},
		{"no root=", "console=tty1 init=/gokrazy/init\n", 2, ""},
		{"root= by device name", "root=/dev/mmcblk0p2\n", 3, ""},
		// The kernel takes the last root=: the new slot would boot the old root.
		{"root= by device name too", testCmdline + " root=/dev/mmcblk0p2\n", 3, ""},
		{"root= on another disk's partition 5", testCmdline + " root=PARTUUID=abcd1234-05\n", 3, ""},
	} {
		got, err := slotCmdline([]byte(tc.in), tc.part)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: %q, want an error", tc.name, got)
		case tc.want != "" && (err != nil || string(got) != tc.want):
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
	if d := parseCmdline("a appliance.trial_deadline=30s b").Deadline(); d != 30*time.Second {
		t.Errorf("deadline %s", d)
	}
	if d := parseCmdline("appliance.trial_deadline=-1s").Deadline(); d != DefaultDeadline {
		t.Errorf("deadline %s", d)
	}
}

// TestConfigSlot: config.txt names its slot in exactly one top-level
// os_prefix line; switching it changes one byte.
func TestConfigSlot(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		slot     int // 0: an error
	}{
		{"the builder's", testConfig, 2},
		{"slot 3, CRLF", "kernel=vmlinuz\r\nos_prefix=slot3/\r\n", 3},
		{"none: an old image", "kernel=vmlinuz\n", 0},
		{"two", testConfig + "os_prefix=slot3/\n", 0},
		{"in a [pi4] section", "[pi4]\nos_prefix=slot2/\n", 0},
		{"after [pi4], [all] again", "[pi4]\narm_boost=1\n[all]\nos_prefix=slot2/\n", 2},
		{"another prefix", "os_prefix=upstream/\n", 0},
		{"slot 4", "os_prefix=slot4/\n", 0},
		// The firmware takes the last os_prefix: it would boot another
		// slot than the one read here.
		{"another prefix after ours", testConfig + "os_prefix=upstream/\n", 0},
		{"another prefix before ours", "os_prefix=upstream/\n" + testConfig, 0},
		{"another in a later section", testConfig + "[pi4]\nos_prefix=pi4/\n", 0},
		{"ours indented too", testConfig + "  os_prefix=slot3/\n", 0},
		{"spaced", testConfig + "os_prefix = slot3/\n", 0},
		{"in capitals", testConfig + "OS_PREFIX=slot3/\n", 0},
		{"commented out", "#os_prefix=slot3/\n" + testConfig, 2},
	} {
		n, _, err := configSlot([]byte(tc.in))
		if n != tc.slot || (err == nil) != (tc.slot != 0) {
			t.Errorf("%s: slot %d %v, want %d", tc.name, n, err, tc.slot)
			continue
		}
		if tc.slot == 0 {
			continue
		}
		out, err := setConfigSlot([]byte(tc.in), other(tc.slot))
		if err != nil || len(out) != len(tc.in) || strings.Replace(tc.in, SlotDir(tc.slot)+"/", SlotDir(other(tc.slot))+"/", 1) != string(out) {
			t.Errorf("%s: switched %q %v", tc.name, out, err)
		}
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

// bootFAT makes a boot partition as the builder does (FAT16, one FAT):
// config.txt booting slot 2, and slot2/ with cmdline.txt and vmlinuz
// (three clusters and more).
func bootFAT(t testing.TB, dir string, kernel []byte) string {
	for _, tool := range []string{"mkfs.vfat", "mcopy", "mtype", "mdeltree"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages dosfstools, mtools)", tool)
		}
	}
	img, stage := filepath.Join(dir, "boot.img"), filepath.Join(dir, "boot")
	os.MkdirAll(filepath.Join(stage, "slot2"), 0o755)
	os.WriteFile(filepath.Join(stage, "config.txt"), []byte(testConfig), 0o644)
	os.WriteFile(filepath.Join(stage, "slot2", "cmdline.txt"), []byte(testCmdline+"\n"), 0o644)
	os.WriteFile(filepath.Join(stage, "slot2", "vmlinuz"), kernel, 0o644)
	for _, c := range [][]string{
		{"mkfs.vfat", "-C", "-F", "16", "-f", "1", "-s", "1", "-n", "BOOT", img, "2100"},
		{"mcopy", "-s", "-Q", "-i", img, filepath.Join(stage, "config.txt"), filepath.Join(stage, "slot2"), "::/"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c[0], err, out)
		}
	}
	return img
}

// mtype reads a file of the FAT image img; "" when it is not there.
func mtype(img, name string) string {
	out, err := exec.Command("mtype", "-i", img, "::/"+name).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestReadImage: the root is partition 2's squashfs, bytes_used long.
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
	if got.Root.Size() != 10000 || got.RootSHA256 != sha(root) {
		t.Errorf("%d bytes, root %s; want root %s", got.Root.Size(), got.RootSHA256, sha(root))
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
// line, a boot ID, and a Unix socket standing for gokrazy's. Mounting
// a root gives newRoot, the files of a new root file system (content
// "symlink:TARGET" a symbolic link); mounting
// the boot FAT copies it out with mtools and, unmounted, copies the
// slots and tryboot.txt back.
type fakeBoard struct {
	*Board
	newRoot map[string]string // path: content
}

func newFakeBoard(t *testing.T, proc string) *fakeBoard {
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
	fb := &fakeBoard{Board: &Board{Socket: filepath.Join(dir, "gk.sock"), ProcCmdline: filepath.Join(dir, "cmdline"), BootIDFile: filepath.Join(dir, "boot_id"), Disk: filepath.Join(dir, "disk")},
		newRoot: map[string]string{"boot/vmlinuz": "new kernel", "boot/bcm2711-rpi-4-b.dtb": "dtb", "boot/overlays/README": "readme", "boot/overlays/w1.dtbo": "overlay"}}
	_, mounted, _ := parseCmdline(proc).root()
	fb.root = func(string) (int, error) { return mounted, nil } // / on the partition root= names
	fb.mount = func(dev, fstype string, rw bool) (string, func() error, error) {
		mnt := t.TempDir()
		switch {
		case fstype == "squashfs" && (dev == fb.Disk+"2" || dev == fb.Disk+"3"):
			for name, content := range fb.newRoot {
				os.MkdirAll(filepath.Dir(filepath.Join(mnt, name)), 0o755)
				if to, ok := strings.CutPrefix(content, "symlink:"); ok {
					os.Symlink(to, filepath.Join(mnt, name))
					continue
				}
				os.WriteFile(filepath.Join(mnt, name), []byte(content), 0o644)
			}
			return mnt, func() error { return nil }, nil
		case fstype == "vfat" && dev == fb.Disk+"1":
			if out, err := exec.Command("mcopy", "-s", "-n", "-i", dev, "::/*", mnt).CombinedOutput(); err != nil {
				return "", nil, fmt.Errorf("mcopy: %v %s", err, out)
			}
			return mnt, func() error {
				if !rw {
					return nil
				}
				for _, name := range []string{"slot2", "slot3", "tryboot.txt"} {
					exec.Command("mdeltree", "-i", dev, "::/"+name).Run()
					exec.Command("mdel", "-i", dev, "::/"+name).Run()
					if _, err := os.Stat(filepath.Join(mnt, name)); err == nil {
						if out, err := exec.Command("mcopy", "-s", "-i", dev, filepath.Join(mnt, name), "::/").CombinedOutput(); err != nil {
							return fmt.Errorf("mcopy: %v %s", err, out)
						}
					}
				}
				return nil
			}, nil
		}
		return "", nil, fmt.Errorf("mount %s %s: not a partition of the board", dev, fstype)
	}
	return fb
}

// file reads a file of the boot partition.
func (b *fakeBoard) file(name string) string { return mtype(b.Disk+"1", name) }

// setConfig replaces config.txt with txt, as an editor on a computer
// would: removed, then written again into the first free clusters.
func (b *fakeBoard) setConfig(t testing.TB, txt string) {
	f := filepath.Join(t.TempDir(), "config.txt")
	os.WriteFile(f, []byte(txt), 0o644)
	exec.Command("mdel", "-i", b.Disk+"1", "::/config.txt").Run()
	if out, err := exec.Command("mcopy", "-i", b.Disk+"1", f, "::/config.txt").CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v %s", err, out)
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

// TestHandler: a root file system is written to the partition not
// running, checked, its /boot copied into the other slot with a
// cmdline.txt naming it, tryboot.txt written, and the board rebooted
// with the tryboot flag; config.txt is never touched; bad requests get
// the right 4xx and change nothing.
func TestHandler(t *testing.T) {
	board := newFakeBoard(t, testCmdline)
	rebooted := make(chan struct{}, 1)
	h := &Handler{Board: board.Board, Version: "v1", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Reboot: func(context.Context) error { rebooted <- struct{}{}; return nil }}
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
		if board.file("config.txt") != testConfig || board.file("tryboot.txt") != "" {
			t.Fatalf("%s: config.txt %q, tryboot.txt %q", tc.name, board.file("config.txt"), board.file("tryboot.txt"))
		}
	}
	// A card laid out before kernel slots (no os_prefix): refused before
	// anything is written.
	board.setConfig(t, strings.Replace(testConfig, "os_prefix", "#s_prefix", 1))
	os.WriteFile(board.Disk+"3", make([]byte, 64<<10), 0o600)
	if w := put(root, good, int64(len(root))); w.Code != 409 || !strings.Contains(w.Body.String(), "laid out without kernel slots") {
		t.Errorf("an old card: %d %q", w.Code, w.Body.String())
	}
	if written, _ := os.ReadFile(board.Disk + "3"); !bytes.Equal(written, make([]byte, 64<<10)) {
		t.Error("partition 3 was written")
	}
	// A second os_prefix (the firmware takes the last): refused too.
	board.setConfig(t, strings.Replace(testConfig, "enable_uart=0", "os_prefix=up/", 1))
	if w := put(root, good, int64(len(root))); w.Code != 409 || !strings.Contains(w.Body.String(), "sets os_prefix 2 times") {
		t.Errorf("two os_prefix lines: %d %q", w.Code, w.Body.String())
	}
	if written, _ := os.ReadFile(board.Disk + "3"); !bytes.Equal(written, make([]byte, 64<<10)) {
		t.Error("partition 3 was written")
	}
	board.setConfig(t, testConfig)
	// The running slot's cmdline.txt with a second root= (the kernel
	// takes the last): the new slot would boot the old root; refused
	// before anything is written.
	stray := filepath.Join(t.TempDir(), "cmdline.txt")
	os.WriteFile(stray, []byte(testCmdline+" root=/dev/mmcblk0p2\n"), 0o644)
	if out, err := exec.Command("mcopy", "-o", "-i", board.Disk+"1", stray, "::/slot2/cmdline.txt").CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v %s", err, out)
	}
	if w := put(root, good, int64(len(root))); w.Code != 409 || !strings.Contains(w.Body.String(), `slot2/cmdline.txt: "root=/dev/mmcblk0p2": only root=PARTUUID=abcd1234-02 or -03`) {
		t.Errorf("a second root=: %d %q", w.Code, w.Body.String())
	}
	if written, _ := os.ReadFile(board.Disk + "3"); !bytes.Equal(written, make([]byte, 64<<10)) {
		t.Error("partition 3 was written")
	}
	os.WriteFile(stray, []byte(testCmdline+"\n"), 0o644)
	exec.Command("mcopy", "-o", "-i", board.Disk+"1", stray, "::/slot2/cmdline.txt").Run()
	// A root file system without /boot/vmlinuz: written, nothing switched.
	board.newRoot = map[string]string{"etc/hostname": "x"}
	if w := put(root, good, int64(len(root))); w.Code != 422 || !strings.Contains(w.Body.String(), "no /boot/vmlinuz (an image built before kernel slots)") {
		t.Errorf("no kernel in the root: %d %q", w.Code, w.Body.String())
	}
	if board.file("tryboot.txt") != "" {
		t.Error("tryboot.txt written without a kernel")
	}
	board.newRoot = map[string]string{"boot/vmlinuz": "new kernel", "boot/bcm2711-rpi-4-b.dtb": "dtb", "boot/overlays/README": "readme", "boot/overlays/w1.dtbo": "overlay", "boot/cmdline.txt": "root=PARTUUID=ffffffff-02 theirs"}
	w := put(root, good, int64(len(root)))
	if w.Code != 202 || !strings.Contains(w.Body.String(), `{"partition":3,"boot_id":"boot-1"}`) {
		t.Fatalf("good update: %d %q", w.Code, w.Body.String())
	}
	written, _ := os.ReadFile(board.Disk + "3")
	if !bytes.Equal(written[:len(root)], root) {
		t.Error("partition 3 does not hold the new root")
	}
	for name, want := range map[string]string{
		"config.txt":                testConfig,
		"tryboot.txt":               strings.Replace(testConfig, "slot2/", "slot3/", 1),
		"slot3/vmlinuz":             "new kernel",
		"slot3/bcm2711-rpi-4-b.dtb": "dtb",
		"slot3/overlays/README":     "readme",
		"slot3/overlays/w1.dtbo":    "overlay",
		"slot3/cmdline.txt":         strings.Replace(testCmdline, "-02", "-03", 1) + "\n", // the board's, not the image's
		"slot2/vmlinuz":             "kernel",
		"slot2/cmdline.txt":         testCmdline + "\n",
	} {
		if got := board.file(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
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

// TestTrialCommit: on the trial boot (slot 3 runs, config.txt boots
// slot 2), an update is refused until slot 3 is committed; Commit
// rewrites config.txt's os_prefix to it; then an update goes to slot 2.
func TestTrialCommit(t *testing.T) {
	board := newFakeBoard(t, strings.Replace(testCmdline, "-02", "-03", 1))
	h := &Handler{Board: board.Board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reboot: func(context.Context) error { return nil }}
	root := fakeSquashfs(4096)
	put := func() *httptest.ResponseRecorder { return putRoot(h, root) }
	if w := put(); w.Code != 409 || !strings.Contains(w.Body.String(), "this boot tries slot 3 and has not committed it") {
		t.Fatalf("uncommitted trial: %d %q", w.Code, w.Body.String())
	}
	st, _ := board.State()
	if !st.Trial || st.Partition != 3 || st.Committed {
		t.Fatalf("state %+v", st)
	}
	// Slot 3 as the running partition 3 must have been booted from: a
	// commit of a slot without a kernel, or whose cmdline.txt names
	// another root, is refused (the firmware would ignore os_prefix and
	// find no kernel, or boot another root).
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "slot3"), 0o755)
	mcopy := func(cmdline string) {
		os.WriteFile(filepath.Join(dir, "slot3", "cmdline.txt"), []byte(cmdline), 0o644)
		exec.Command("mdeltree", "-i", board.Disk+"1", "::/slot3").Run()
		if out, err := exec.Command("mcopy", "-s", "-i", board.Disk+"1", filepath.Join(dir, "slot3"), "::/").CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "slot3", "vmlinuz"), []byte("kernel 3"), 0o644)
	for _, tc := range []struct{ name, cmdline, msg string }{
		{"no slot 3", "", "slot3/vmlinuz is missing"},
		{"root= on partition 2", testCmdline + "\n", "slot3/cmdline.txt boots root=PARTUUID=abcd1234-02"},
		{"root= on another disk", strings.Replace(testCmdline, "abcd1234-02", "ffffffff-03", 1) + "\n", "boots root=PARTUUID=ffffffff-03"},
	} {
		if tc.cmdline != "" {
			mcopy(tc.cmdline)
		}
		if ok, err := board.Commit(); ok || err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: commit %v %v, want %q", tc.name, ok, err, tc.msg)
		}
		if got := board.file("config.txt"); got != testConfig {
			t.Fatalf("%s: config.txt %q", tc.name, got)
		}
	}
	mcopy(strings.Replace(testCmdline, "-02", "-03", 1) + "\n")
	// / on partition 2 (the kernel took a later root=): not committed.
	board.root = func(string) (int, error) { return 2, nil }
	if ok, err := board.Commit(); ok || err == nil || !strings.Contains(err.Error(), "/ is on partition 2") {
		t.Errorf("/ on partition 2: commit %v %v", ok, err)
	}
	board.root = func(string) (int, error) { return 3, nil }
	if ok, err := board.Commit(); !ok || err != nil {
		t.Fatalf("commit: %v %v", ok, err)
	}
	if got := board.file("config.txt"); got != strings.Replace(testConfig, "slot2/", "slot3/", 1) {
		t.Errorf("committed config.txt %q", got)
	}
	if ok, err := board.Commit(); ok || err != nil {
		t.Errorf("second commit: %v %v", ok, err)
	}
	if w := put(); w.Code != 202 || !strings.Contains(w.Body.String(), `"partition":2`) {
		t.Fatalf("after the commit: %d %q", w.Code, w.Body.String())
	}
	if got := board.file("tryboot.txt"); got != testConfig {
		t.Errorf("tryboot.txt %q", got)
	}
	if got := board.file("slot2/cmdline.txt"); got != testCmdline+"\n" {
		t.Errorf("slot2/cmdline.txt %q", got)
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
		// The boot partition's reader, on what follows the MBR.
		if len(img) > Sector {
			if v, err := openFAT(bytes.NewReader(img[Sector:])); err == nil {
				v.copyFile(io.Discard, "slot2/vmlinuz", maxKernel)
				if c, size, err := v.find("config.txt"); err == nil && size <= maxConfig {
					v.copyChain(io.Discard, c, size, false, "config.txt")
					v.fileOffset(c, size/2)
				}
			}
		}
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

// FuzzBootFiles: a slot's cmdline.txt names the slot's partition and
// nothing gokrazy would switch on; config.txt switched to a slot names
// it, one byte changed.
func FuzzBootFiles(f *testing.F) {
	f.Add(testCmdline+" gokrazy.try_boot_inactive=1\n", testConfig, 3)
	f.Add("root=PARTUUID=abcd1234-03", "[pi4]\nos_prefix=slot3/\n[all]\nos_prefix=slot2/\n", 2)
	f.Fuzz(func(t *testing.T, cmd, config string, part int) {
		part = 2 + part&1
		if out, err := slotCmdline([]byte(cmd), part); err == nil {
			c := parseCmdline(string(out))
			if _, p, err := c.root(); err != nil || p != part || strings.Contains(string(out), "gokrazy.try_boot_inactive=1") {
				t.Fatalf("%q -> %q", cmd, out)
			}
		}
		if out, err := setConfigSlot([]byte(config), part); err == nil {
			n, _, err := configSlot(out)
			diff := 0
			for i := range out {
				if out[i] != config[i] {
					diff++
				}
			}
			if err != nil || n != part || len(out) != len(config) || diff > 1 {
				t.Fatalf("%q -> %q: slot %d %v", config, out, n, err)
			}
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

// TestUpdateAfterFailedReboot: an update whose reboot failed leaves
// tryboot.txt (a reboot with the flag would try the new slot); the next
// update removes it and the other slot before it writes that partition
// again, so that a power cut or a client gone midway never leaves a
// half-written slot to try.
func TestUpdateAfterFailedReboot(t *testing.T) {
	board := newFakeBoard(t, testCmdline)
	h := &Handler{Board: board.Board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Reboot: func(context.Context) error { return errors.New("reboot refused") }}
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
	if got := board.file("tryboot.txt"); !strings.Contains(got, "os_prefix=slot3/") {
		t.Fatalf("after the failed reboot: tryboot.txt %q", got)
	}
	if code := put(&cutBody{bytes.NewReader(root), 10000}); code != 500 {
		t.Fatalf("update cut after 10000 of 20000 bytes: %d", code)
	}
	if try, k := board.file("tryboot.txt"), board.file("slot3/vmlinuz"); try != "" || k != "" || board.file("config.txt") != testConfig {
		t.Errorf("while partition 3 holds half a root: tryboot.txt %q, slot3/vmlinuz %q", try, k)
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
	_, err := openFAT(sparse{0: b, (1 + 65535) * 4096: entry})
	runtime.ReadMemStats(&m1)
	if err == nil || !strings.Contains(err.Error(), "130000000 clusters") {
		t.Errorf("err %v", err)
	}
	if n := m1.TotalAlloc - m0.TotalAlloc; n > 1<<20 {
		t.Errorf("allocated %d bytes", n)
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
	board := newFakeBoard(t, testCmdline+" root=PARTUUID=abcd1234-03")
	board.root = func(string) (int, error) { return 3, nil }
	h := &Handler{Board: board.Board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reboot: func(context.Context) error { return nil }}
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
	board := newFakeBoard(t, testCmdline)
	h := &Handler{Board: board.Board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Timeout: 200 * time.Millisecond,
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
	board := newFakeBoard(t, testCmdline)
	h := &Handler{Board: board.Board, Version: "v1", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
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
	mren("::/slot2/vmlinuz", "::/slot2/vmlinux")
	if code := get(); code != 500 {
		t.Fatalf("without a kernel: %d, want 500", code)
	}
	mren("::/slot2/vmlinux", "::/slot2/vmlinuz")
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
	board := newFakeBoard(t, testCmdline)
	h := &Handler{Board: board.Board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reboot: func(context.Context) error { return nil }}
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

// TestUnbootableRoot: a new root whose /boot lacks a device tree or
// overlays/README that the running slot has (the firmware would ignore
// the slot's os_prefix and find no kernel: a trial boot that hangs), or
// whose /boot is a link (os.DirFS would follow it off the new root,
// onto the running system's files), gets 422: no slot, no tryboot.txt.
func TestUnbootableRoot(t *testing.T) {
	board := newFakeBoard(t, testCmdline)
	h := &Handler{Board: board.Board, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Reboot: func(context.Context) error { return nil }}
	stage := t.TempDir()
	os.MkdirAll(filepath.Join(stage, "overlays"), 0o755)
	os.WriteFile(filepath.Join(stage, "bcm2711-rpi-4-b.dtb"), []byte("dtb"), 0o644)
	os.WriteFile(filepath.Join(stage, "overlays", "README"), []byte("readme"), 0o644)
	for _, name := range []string{"bcm2711-rpi-4-b.dtb", "overlays"} {
		if out, err := exec.Command("mcopy", "-s", "-i", board.Disk+"1", filepath.Join(stage, name), "::/slot2/").CombinedOutput(); err != nil {
			t.Fatalf("mcopy: %v %s", err, out)
		}
	}
	outside := t.TempDir() // the running system's files, as a link from /boot would reach them
	os.WriteFile(filepath.Join(outside, "vmlinuz"), []byte("not from the new root"), 0o644)
	os.WriteFile(filepath.Join(outside, "bcm2711-rpi-4-b.dtb"), []byte("dtb"), 0o644)
	os.MkdirAll(filepath.Join(outside, "overlays"), 0o755)
	os.WriteFile(filepath.Join(outside, "overlays", "README"), []byte("readme"), 0o644)
	root := fakeSquashfs(4096)
	for _, tc := range []struct {
		name    string
		newRoot map[string]string
		msg     string
	}{
		{"no device tree", map[string]string{"boot/vmlinuz": "k", "boot/bcm2712-rpi-5-b.dtb": "dtb", "boot/overlays/README": "r"}, "lacks /boot/bcm2711-rpi-4-b.dtb, which the running slot has"},
		{"no overlays/README", map[string]string{"boot/vmlinuz": "k", "boot/bcm2711-rpi-4-b.dtb": "dtb"}, "lacks /boot/overlays/README"},
		{"the device tree a directory", map[string]string{"boot/vmlinuz": "k", "boot/bcm2711-rpi-4-b.dtb/x": "dtb", "boot/overlays/README": "r"}, "lacks /boot/bcm2711-rpi-4-b.dtb"},
		{"/boot a link", map[string]string{"boot": "symlink:" + outside}, "/boot is not a directory"},
	} {
		board.newRoot = tc.newRoot
		if w := putRoot(h, root); w.Code != 422 || !strings.Contains(w.Body.String(), tc.msg) {
			t.Errorf("%s: %d %q, want 422 %q", tc.name, w.Code, w.Body.String(), tc.msg)
		}
		if try, k := board.file("tryboot.txt"), board.file("slot3/vmlinuz"); try != "" || k != "" {
			t.Errorf("%s: tryboot.txt %q, slot3/vmlinuz %q", tc.name, try, k)
		}
	}
	board.newRoot = map[string]string{"boot/vmlinuz": "k", "boot/bcm2711-rpi-4-b.dtb": "dtb", "boot/overlays/README": "r"}
	if w := putRoot(h, root); w.Code != 202 || board.file("slot3/bcm2711-rpi-4-b.dtb") != "dtb" {
		t.Errorf("with the device tree: %d %q", w.Code, w.Body.String())
	}
}

// TestVerifySlot: the read-back check covers the slot's cmdline.txt,
// which no file of the new root gives: one whose root= is not the
// slot's (the trial would boot the new kernel on another root) or that
// is missing fails it, as a kernel that differs does.
func TestVerifySlot(t *testing.T) {
	src := fstest.MapFS{"vmlinuz": {Data: []byte("new kernel")}, "overlays/README": {Data: []byte("r")}}
	cmd3 := strings.Replace(testCmdline, "-02", "-03", 1) + "\n"
	for _, tc := range []struct {
		name  string
		files map[string]string // in the boot partition
		msg   string            // "" no error
	}{
		{"as written", map[string]string{"slot3/cmdline.txt": cmd3}, ""},
		{"root= on the running partition", map[string]string{"slot3/cmdline.txt": testCmdline + "\n"}, "slot3/cmdline.txt read back from the card"},
		{"cut short", map[string]string{"slot3/cmdline.txt": cmd3[:20]}, "slot3/cmdline.txt read back from the card"},
		{"missing", map[string]string{}, "slot3/cmdline.txt read back from the card"},
		{"another kernel", map[string]string{"slot3/cmdline.txt": cmd3, "slot3/vmlinuz": "old kernel"}, "slot3/vmlinuz read back from the card differs"},
		{"tryboot.txt on slot 2", map[string]string{"slot3/cmdline.txt": cmd3, "tryboot.txt": testConfig}, "tryboot.txt read back does not name slot 3"},
	} {
		boot := t.TempDir()
		files := map[string]string{"slot2/cmdline.txt": testCmdline + "\n", "slot3/vmlinuz": "new kernel", "slot3/overlays/README": "r",
			"tryboot.txt": strings.Replace(testConfig, "slot2/", "slot3/", 1)}
		for name, content := range tc.files {
			files[name] = content
		}
		if _, ok := tc.files["slot3/cmdline.txt"]; !ok {
			delete(files, "slot3/cmdline.txt")
		}
		for name, content := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(boot, name)), 0o755)
			os.WriteFile(filepath.Join(boot, name), []byte(content), 0o644)
		}
		err := verifySlot(src, boot, 2, 3)
		if tc.msg == "" && err != nil || tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.msg)
		}
	}
}

// TestConfigAcrossClusters: a config.txt the board's owner made longer
// than a cluster (4 KiB on the card; 512 bytes here), in clusters that
// do not follow each other, is read whole, and the commit changes the
// one byte of its slot where it lies on the card, nothing else.
func TestConfigAcrossClusters(t *testing.T) {
	board := newFakeBoard(t, strings.Replace(testCmdline, "-02", "-03", 1))
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "slot3"), 0o755)
	os.WriteFile(filepath.Join(dir, "slot3", "cmdline.txt"), []byte(strings.Replace(testCmdline, "-02", "-03", 1)+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "slot3", "vmlinuz"), []byte("kernel 3"), 0o644)
	if out, err := exec.Command("mcopy", "-s", "-i", board.Disk+"1", filepath.Join(dir, "slot3"), "::/").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	big := strings.Repeat("# a line of the owner's notes, to make config.txt long\n", 30) + testConfig
	board.setConfig(t, big) // its first cluster the one the short config.txt freed, the rest after slot 3
	f, _ := os.Open(board.Disk + "1")
	v, err := openFAT(f)
	if err != nil {
		t.Fatal(err)
	}
	c, size, _ := v.find("config.txt")
	fat := make([]byte, 2*(v.clusters+2))
	f.ReadAt(fat, v.fatStart)
	f.Close()
	if next := int64(binary.LittleEndian.Uint16(fat[2*c:])); size <= 2*v.clusterLen || next == c+1 {
		t.Fatalf("config.txt: %d bytes from cluster %d, then %d: want it over three clusters, not in a row", size, c, next)
	}
	st, err := board.State()
	if err != nil || !st.Trial || st.Partition != 3 {
		t.Fatalf("state %+v %v", st, err)
	}
	before, _ := os.ReadFile(board.Disk + "1")
	if ok, err := board.Commit(); !ok || err != nil {
		t.Fatalf("commit: %v %v", ok, err)
	}
	if got := board.file("config.txt"); got != strings.Replace(big, "slot2/", "slot3/", 1) {
		t.Errorf("committed config.txt %q", got)
	}
	after, _ := os.ReadFile(board.Disk + "1")
	diff := 0
	for i := range after {
		if after[i] != before[i] {
			diff++
		}
	}
	if diff != 1 {
		t.Errorf("the commit changed %d bytes of the boot partition, want 1", diff)
	}
	// Beyond maxConfig: refused (409), with what to do.
	long := strings.Repeat("#\n", maxConfig/2) + testConfig
	board.setConfig(t, long)
	h := &Handler{Board: board.Board, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if w := putRoot(h, fakeSquashfs(4096)); w.Code != 409 || !strings.Contains(w.Body.String(), fmt.Sprintf("config.txt is %d bytes, more than 65536", len(long))) {
		t.Errorf("a config.txt of 64 KiB: %d %q", w.Code, w.Body.String())
	}
}

// TestSlotBound: a new /boot of more than maxSlot (112 MiB: two slots
// and the firmware share the 256 MiB boot partition) is refused while
// it is copied, and no tryboot.txt names the slot.
func TestSlotBound(t *testing.T) {
	boot := t.TempDir()
	os.MkdirAll(filepath.Join(boot, "slot2"), 0o755)
	os.WriteFile(filepath.Join(boot, "slot2", "cmdline.txt"), []byte(testCmdline+"\n"), 0o644)
	os.WriteFile(filepath.Join(boot, "config.txt"), []byte(testConfig), 0o644)
	half := make([]byte, maxSlot/2+1)
	src := fstest.MapFS{"vmlinuz": {Data: half}, "initrd": {Data: half}}
	err := writeSlot(src, boot, 2, 3)
	if err == nil || !strings.Contains(err.Error(), "/boot holds more than 112 MiB") {
		t.Errorf("%d bytes: %v", 2*len(half), err)
	}
	if _, err := os.Stat(filepath.Join(boot, "tryboot.txt")); err == nil {
		t.Error("tryboot.txt written")
	}
	written := int64(0)
	filepath.WalkDir(filepath.Join(boot, "slot3"), func(p string, d fs.DirEntry, err error) error {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			written += fi.Size()
		}
		return nil
	})
	if written > maxSlot+1 {
		t.Errorf("%d bytes written to the slot, more than %d", written, maxSlot+1)
	}
}
