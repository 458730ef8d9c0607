package piupdate

import (
	"bytes"
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
	"unsafe"

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
	// mount, when set, replaces mountFS (tests).
	mount func(dev, fstype string, rw bool) (string, func() error, error)
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
	Partition int    `json:"partition"` // the slot running: its root partition, 2 or 3
	Trial     bool   `json:"trial"`     // config.txt boots the other slot: this boot tries Partition once (tryboot)
	Committed bool   `json:"committed"` // config.txt boots Partition: the next boot starts it again
	disk, sig string
}

// State reads where the board stands: the slot running (its kernel
// command line's root=) against the slot config.txt boots.
func (b *Board) State() (State, error) {
	pc, err := os.ReadFile(b.ProcCmdline)
	if err != nil {
		return State{}, err
	}
	sig, part, err := parseCmdline(string(pc)).root()
	if err != nil {
		return State{}, err
	}
	st := State{Partition: part, sig: sig}
	if st.disk, err = b.findDisk(sig); err != nil {
		return State{}, err
	}
	boots, err := b.bootSlot(st.disk)
	if err != nil {
		return State{}, err
	}
	st.Committed = boots == part
	st.Trial = !st.Committed
	id, err := os.ReadFile(b.BootIDFile)
	st.BootID = strings.TrimSpace(string(id))
	return st, err
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

// maxConfig bounds config.txt as read from the boot partition.
const maxConfig = 64 << 10

// configTxt reads the boot partition's config.txt, and returns the
// slot it boots and where the digit of its os_prefix lies on the
// partition: config.txt may span clusters, in any order.
func (b *Board) configTxt(disk string) (slot int, digit int64, err error) {
	f, err := os.Open(partitionDevice(disk, 1))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	// What the kernel's vfat wrote (installSlot) went around the
	// device's page cache: read the card.
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	v, err := openFAT(f)
	if err != nil {
		return 0, 0, fmt.Errorf("boot partition: %w", err)
	}
	c, size, err := v.find("config.txt")
	if err != nil {
		return 0, 0, fmt.Errorf("boot partition: %w", err)
	}
	if size > maxConfig {
		return 0, 0, fmt.Errorf("%w is %d bytes, more than %d: make it shorter", ErrBootConfig, size, maxConfig)
	}
	var txt bytes.Buffer
	if err := v.copyChain(&txt, c, size, false, "config.txt"); err != nil {
		return 0, 0, fmt.Errorf("boot partition: %w", err)
	}
	slot, at, err := configSlot(txt.Bytes())
	if err != nil {
		return 0, 0, err
	}
	if digit, err = v.fileOffset(c, int64(at)); err != nil {
		return 0, 0, fmt.Errorf("boot partition: config.txt: %w", err)
	}
	return slot, digit, nil
}

// bootSlot is the slot config.txt boots.
func (b *Board) bootSlot(disk string) (int, error) {
	n, _, err := b.configTxt(disk)
	return n, err
}

// setBoot rewrites config.txt in place to boot slot n: one byte, in
// one sector.
func (b *Board) setBoot(disk string, n int) error {
	_, digit, err := b.configTxt(disk)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(partitionDevice(disk, 1), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{byte('0' + n)}, digit); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// checkBoot refuses an update the board cannot take, before anything is
// written: a card laid out before kernel slots, a running slot whose
// cmdline.txt cannot be carried over.
func (b *Board) checkBoot(st State) error {
	n, err := b.bootSlot(st.disk)
	if err == nil && n != st.Partition {
		err = fmt.Errorf("config.txt boots slot %d, and slot %d runs", n, st.Partition)
	}
	if err != nil {
		return err
	}
	return b.checkSlot(st)
}

// Kernel hashes the running slot's kernel.
func (b *Board) Kernel(st State) (string, error) {
	f, err := os.Open(partitionDevice(st.disk, 1))
	if err != nil {
		return "", err
	}
	defer f.Close()
	v, err := openFAT(f)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if err := v.copyFile(h, SlotDir(st.Partition)+"/vmlinuz", maxKernel); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// maxKernel bounds the kernel read from a boot partition.
const maxKernel = 128 << 20

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
// unmount /perm and reboot: the firmware then boots the slot config.txt
// names. It answers when the services are stopped: the caller among
// them may not see it.
func (b *Board) Reboot(ctx context.Context) error {
	return b.call(ctx, http.MethodPost, "/reboot?wait_per_signal=10s")
}

// TryBoot reboots with the firmware's tryboot flag: the next boot reads
// tryboot.txt instead of config.txt, once; any boot after it config.txt
// again. gokrazy's reboot cannot pass the flag: the file systems are
// synced, not unmounted (/perm is ext4, journalled).
func (b *Board) TryBoot(context.Context) error {
	time.Sleep(2 * time.Second) // the update's answer on its way to the client
	unix.Sync()
	arg, err := unix.BytePtrFromString("0 tryboot")
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2,
		unix.LINUX_REBOOT_CMD_RESTART2, uintptr(unsafe.Pointer(arg)), 0, 0)
	return fmt.Errorf("reboot with tryboot: %w", errno)
}

// Commit makes the running slot the one the board boots, when this is
// an uncommitted trial boot; it reports whether it committed.
func (b *Board) Commit() (bool, error) {
	st, err := b.State()
	if err != nil || !st.Trial { // Trial: config.txt boots another slot, not yet committed
		return false, err
	}
	if err := b.checkSlot(st); err != nil {
		return false, fmt.Errorf("not committing slot %d: %w", st.Partition, err)
	}
	// The kernel takes the last root= of its command line, State the
	// first: the slot committed must be the root mounted on /.
	if n, err := b.rootPartition(st.disk); err != nil || n != st.Partition {
		return false, fmt.Errorf("not committing slot %d: / is on partition %d (%v), not %d", st.Partition, n, err, st.Partition)
	}
	return true, b.setBoot(st.disk, st.Partition)
}

// checkSlot checks the running partition's slot: a kernel, and a
// cmdline.txt whose root= is that partition of this disk and that an
// update can make into the other slot's (no other root=). Commit needs
// it: a boot that runs the partition from other files (a cmdline.txt
// edited by hand) must not make config.txt name a slot the firmware
// would ignore (and then find no kernel) or boot on another root. An
// update needs it before anything is written.
func (b *Board) checkSlot(st State) error {
	f, err := os.Open(partitionDevice(st.disk, 1))
	if err != nil {
		return err
	}
	defer f.Close()
	v, err := openFAT(f)
	if err != nil {
		return fmt.Errorf("boot partition: %w", err)
	}
	dir := SlotDir(st.Partition)
	if _, size, err := v.find(dir + "/vmlinuz"); err != nil || size == 0 {
		return fmt.Errorf("%s/vmlinuz is missing or empty (%v)", dir, err)
	}
	var cmd bytes.Buffer
	if err := v.copyFile(&cmd, dir+"/cmdline.txt", 64<<10); err != nil {
		return err
	}
	if sig, part, err := parseCmdline(cmd.String()).root(); err != nil || sig != st.sig || part != st.Partition {
		return fmt.Errorf("%s/cmdline.txt boots root=PARTUUID=%s-%02d, not this root (%s-%02d) (%v)", dir, sig, part, st.sig, st.Partition, err)
	}
	if _, err := slotCmdline(cmd.Bytes(), other(st.Partition)); err != nil {
		return fmt.Errorf("%s/cmdline.txt: %w", dir, err)
	}
	return nil
}
