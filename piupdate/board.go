package piupdate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Board is the gokrazy system this program runs on: its HTTP API on a
// Unix socket (root only, no password), the kernel command line, and
// the card's partitions.
type Board struct {
	Socket      string // gokrazy's HTTP API
	ProcCmdline string // this boot's kernel command line
	BootIDFile  string // a new random ID at each boot
	SysBlock    string // the block devices, to find the card by its disk signature
	Dev         string // their device nodes
	// Disk, when set, is the card's block device (tests); else the one
	// whose MBR has the disk signature that root= names.
	Disk string
	// root, when set, returns the root partition mounted on / (tests);
	// else rootPartition compares device numbers.
	root func(disk string) (int, error)
}

// Gokrazy is the board as gokrazy sets it up.
func Gokrazy() *Board {
	return &Board{
		Socket:      "/run/gokrazy-http.sock",
		ProcCmdline: "/proc/cmdline",
		BootIDFile:  "/proc/sys/kernel/random/boot_id",
		SysBlock:    "/sys/block",
		Dev:         "/dev",
	}
}

// Present reports whether this is a gokrazy board: its socket exists.
func (b *Board) Present() bool {
	fi, err := os.Stat(b.Socket)
	return err == nil && fi.Mode().Type() == fs.ModeSocket
}

// State is where the board stands.
type State struct {
	BootID    string `json:"boot_id"`
	Partition int    `json:"partition"` // the root partition running, 2 or 3
	Trial     bool   `json:"trial"`     // this boot tries Partition once
	Committed bool   `json:"committed"` // cmdline.txt boots Partition: the next boot starts it again
	disk      string
}

// State reads where the board stands.
func (b *Board) State() (State, error) {
	pc, err := os.ReadFile(b.ProcCmdline)
	if err != nil {
		return State{}, err
	}
	c := parseCmdline(string(pc))
	sig, part, err := c.root()
	if err != nil {
		return State{}, err
	}
	st := State{Partition: part, Trial: c.has(trialToken)}
	if st.Trial { // gokrazy's init switched to the other root
		st.Partition = other(part)
	}
	if st.disk, err = b.findDisk(sig); err != nil {
		return State{}, err
	}
	if st.Trial {
		// Unless it could not (it logs why: the new root did not mount,
		// cmdline.txt could not be rewritten): then the old root runs
		// with the token, and committing would make the firmware boot
		// a root that never ran.
		if n, err := b.rootPartition(st.disk); err == nil && n == part {
			st.Trial, st.Partition = false, part
		}
	}
	txt, _, err := b.cmdlineTxt(st.disk)
	if err != nil {
		return State{}, err
	}
	_, boots, err := parseCmdline(string(txt)).root()
	if err != nil {
		return State{}, fmt.Errorf("cmdline.txt: %w", err)
	}
	st.Committed = boots == st.Partition
	id, err := os.ReadFile(b.BootIDFile)
	st.BootID = strings.TrimSpace(string(id))
	return st, err
}

// Trial reports whether this boot tries a new root (its kernel command
// line has gokrazy's token).
func (b *Board) Trial() bool {
	pc, _ := os.ReadFile(b.ProcCmdline)
	return parseCmdline(string(pc)).has(trialToken)
}

// Deadline is this boot's trial deadline (DefaultDeadline unless the
// kernel command line says appliance.trial_deadline=DURATION).
func (b *Board) Deadline() time.Duration {
	pc, _ := os.ReadFile(b.ProcCmdline)
	return parseCmdline(string(pc)).Deadline()
}

// findDisk returns the block device whose MBR has the disk signature
// sig, as gokrazy finds it; two such disks (a clone of the card on a USB
// drive) are refused: gokrazy, the kernel and this program could each
// take another.
func (b *Board) findDisk(sig string) (string, error) {
	if b.Disk != "" {
		return b.Disk, nil
	}
	entries, err := os.ReadDir(b.SysBlock)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range entries {
		dev := filepath.Join(b.Dev, e.Name())
		f, err := os.Open(dev)
		if err != nil {
			continue
		}
		var mbr [446]byte
		_, err = f.ReadAt(mbr[:], 0)
		f.Close()
		if err == nil && fmt.Sprintf("%08x", binary.LittleEndian.Uint32(mbr[440:])) == sig {
			found = append(found, dev)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no disk with signature %s (root=PARTUUID=%s-0N)", sig, sig)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("disks %s have the same signature %s (root=PARTUUID=%s-0N): remove the copies of the card", strings.Join(found, ", "), sig, sig)
}

// rootPartition returns the root partition of disk mounted on /: the
// one whose device number the root file system has.
func (b *Board) rootPartition(disk string) (int, error) {
	if b.root != nil {
		return b.root(disk)
	}
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		return 0, err
	}
	for _, n := range []int{2, 3} {
		var dev unix.Stat_t
		if unix.Stat(partitionDevice(disk, n), &dev) == nil && dev.Mode&unix.S_IFMT == unix.S_IFBLK && dev.Rdev == root.Dev {
			return n, nil
		}
	}
	return 0, fmt.Errorf("/ is on neither root partition of %s", disk)
}

// partition is the device of partition n of disk: /dev/mmcblk0p1,
// /dev/vda1.
func partitionDevice(disk string, n int) string {
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}

// cmdlineTxt reads the boot partition's cmdline.txt, and returns where
// it lies there.
func (b *Board) cmdlineTxt(disk string) ([]byte, int64, error) {
	f, err := os.Open(partitionDevice(disk, 1))
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	v, err := openFAT(f)
	if err != nil {
		return nil, 0, fmt.Errorf("boot partition: %w", err)
	}
	off, size, err := v.extent("cmdline.txt")
	if err != nil {
		return nil, 0, fmt.Errorf("boot partition: %w", err)
	}
	txt := make([]byte, size)
	if _, err := f.ReadAt(txt, off); err != nil {
		return nil, 0, fmt.Errorf("boot partition: %w", err)
	}
	return txt, off, nil
}

// setBoot rewrites cmdline.txt in place, the same length: root= on
// part, and the trial token if trial.
func (b *Board) setBoot(disk string, part int, trial bool) error {
	txt, off, err := b.cmdlineTxt(disk)
	if err != nil {
		return err
	}
	txt, err = rewriteCmdline(txt, part, trial)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(partitionDevice(disk, 1), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(txt, off); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// checkBoot refuses an update whose trial cmdline.txt cannot set, before
// anything is written: one edited without the builder's padding.
func (b *Board) checkBoot(st State) error {
	txt, _, err := b.cmdlineTxt(st.disk)
	if err == nil {
		_, err = rewriteCmdline(txt, st.Partition, true)
	}
	return err
}

// Kernel hashes the boot partition's vmlinuz.
func (b *Board) Kernel(st State) (string, error) {
	f, err := os.Open(partitionDevice(st.disk, 1))
	if err != nil {
		return "", err
	}
	defer f.Close()
	return kernelSHA256(f)
}

// ErrTooLarge: a root file system larger than its partition.
var ErrTooLarge = errors.New("larger than the root partition")

// writeRoot writes size bytes of body to the root partition that is not
// running, and returns the SHA-256 of what the partition then holds,
// read back from the card.
func (b *Board) writeRoot(st State, body io.Reader, size int64) (string, error) {
	f, err := os.OpenFile(partitionDevice(st.disk, other(st.Partition)), os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	room, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	if size > room {
		return "", fmt.Errorf("%d bytes: %w (%d)", size, ErrTooLarge, room)
	}
	n, err := io.Copy(io.NewOffsetWriter(f, 0), io.LimitReader(body, size))
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("the request ended after %d of %d bytes", n, size)
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := dropCache(f, size); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// dropCache drops the first size bytes of f, written and synced, from
// the page cache: read back, they come from the card, not from the
// memory that wrote them.
func dropCache(f *os.File, size int64) error {
	if err := unix.Fadvise(int(f.Fd()), 0, size, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("dropping the written root from the page cache: %w", err)
	}
	return nil
}

// call makes a request to gokrazy's HTTP API.
func (b *Board) call(ctx context.Context, method, path string) error {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", b.Socket)
	}}}
	req, err := http.NewRequestWithContext(ctx, method, "http://gokrazy"+path, nil)
	if err != nil {
		return err
	}
	res, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("gokrazy %s: %w", path, err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("gokrazy %s: %s: %s", path, res.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Reboot asks gokrazy to stop the services (10 s each before SIGKILL),
// unmount /perm and reboot. It answers when the services are stopped:
// the caller among them may not see it.
func (b *Board) Reboot(ctx context.Context) error {
	return b.call(ctx, http.MethodPost, "/reboot?wait_per_signal=10s")
}

// Commit makes the running root the one the board boots, when this is
// an uncommitted trial boot; it reports whether it committed.
func (b *Board) Commit() (bool, error) {
	st, err := b.State()
	if err != nil || !st.Trial || st.Committed {
		return false, err
	}
	return true, b.setBoot(st.disk, st.Partition, false)
}
