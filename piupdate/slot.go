package piupdate

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"appliance/internal/durable"
)

// A slot is the boot files of one root partition: the kernel, device
// trees and overlays that the image's builder put in its root file
// system's /boot (RootBoot), and a cmdline.txt naming the partition.
// The firmware boots the slot config.txt's os_prefix names; an update
// writes the other slot and tryboot.txt, which names it for one boot.
const (
	RootBoot = "boot"
	// maxSlot bounds what one slot may put on the boot partition:
	// two slots and the firmware share 256 MiB.
	maxSlot = 112 << 20
)

// mountFS mounts dev (fstype, read-only unless rw) on a new directory,
// and returns it and the function that unmounts it.
func (b *Board) mountFS(dev, fstype string, rw bool) (string, func() error, error) {
	if b.mount != nil {
		return b.mount(dev, fstype, rw)
	}
	dir, err := os.MkdirTemp("", "appliance-"+fstype)
	if err != nil {
		return "", nil, err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if !rw {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, dir, fstype, flags, ""); err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("mounting %s (%s): %w", dev, fstype, err)
	}
	return dir, func() error {
		err := unix.Unmount(dir, 0)
		if err == nil {
			os.Remove(dir)
		}
		return err
	}, nil
}

// clearTrial removes tryboot.txt and the other slot's files: nothing
// may try the target partition while it is written.
func (b *Board) clearTrial(st State) error {
	boot, unmount, err := b.mountFS(partitionDevice(st.disk, 1), "vfat", true)
	if err != nil {
		return err
	}
	err = os.Remove(filepath.Join(boot, "tryboot.txt"))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	err = errors.Join(err, os.RemoveAll(filepath.Join(boot, SlotDir(other(st.Partition)))))
	unix.Sync()
	return errors.Join(err, unmount())
}

// installSlot writes the slot of the target partition, just written:
// the boot files of its root file system, the running slot's
// cmdline.txt with root= on target, and tryboot.txt naming it; then
// reads them back from the card.
func (b *Board) installSlot(st State, target int) (err error) {
	root, unmountRoot, err := b.mountFS(partitionDevice(st.disk, target), "squashfs", false)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, unmountRoot()) }()
	// os.DirFS follows a link: /boot -> / would copy the running
	// system's files (/perm's keys among them) onto the boot partition.
	if fi, err := os.Lstat(filepath.Join(root, RootBoot)); err == nil && !fi.IsDir() {
		return fmt.Errorf("%w: the new root file system's /%s is not a directory (%s)", ErrNotBootable, RootBoot, fi.Mode().Type())
	}
	src := os.DirFS(filepath.Join(root, RootBoot))
	boot, unmountBoot, err := b.mountFS(partitionDevice(st.disk, 1), "vfat", true)
	if err != nil {
		return err
	}
	err = writeSlot(src, boot, st.Partition, target)
	unix.Sync()
	if err = errors.Join(err, unmountBoot()); err != nil {
		return err
	}
	// Mounted again, read-only: the files come from the card.
	boot, unmountBoot, err = b.mountFS(partitionDevice(st.disk, 1), "vfat", false)
	if err != nil {
		return err
	}
	return errors.Join(verifySlot(src, boot, st.Partition, target), unmountBoot())
}

// writeSlot writes slot target in boot (the boot partition, mounted)
// from src (the new root's /boot), then tryboot.txt: config.txt with
// os_prefix on the target slot. config.txt is not touched.
func writeSlot(src fs.FS, boot string, running, target int) error {
	dst := filepath.Join(boot, SlotDir(target))
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if _, err := fs.Stat(src, "vmlinuz"); err != nil {
		return fmt.Errorf("%w: the new root file system has no /%s/vmlinuz (an image built before kernel slots): %v", ErrNotBootable, RootBoot, err)
	}
	if err := checkViable(src, filepath.Join(boot, SlotDir(running))); err != nil {
		return err
	}
	total := int64(0)
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "cmdline.txt" {
			return nil // the board's own, below
		}
		to := filepath.Join(dst, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case !d.Type().IsRegular():
			return fmt.Errorf("/%s/%s: not a regular file", RootBoot, p)
		}
		in, err := src.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		n, err := writeFile(to, io.LimitReader(in, maxSlot-total+1))
		if total += n; err == nil && total > maxSlot {
			err = fmt.Errorf("/%s holds more than %d MiB: more than a slot of the boot partition", RootBoot, maxSlot>>20)
		}
		return err
	})
	if err != nil {
		return err
	}
	cmd, err := targetCmdline(boot, running, target)
	if err != nil {
		return err
	}
	if _, err := writeFile(filepath.Join(dst, "cmdline.txt"), bytes.NewReader(cmd)); err != nil {
		return err
	}
	if err := durable.SyncDir(dst); err != nil {
		return err
	}
	config, err := os.ReadFile(filepath.Join(boot, "config.txt"))
	if err != nil {
		return err
	}
	if config, err = setConfigSlot(config, target); err != nil {
		return err
	}
	if _, err := writeFile(filepath.Join(boot, "tryboot.txt"), bytes.NewReader(config)); err != nil {
		return err
	}
	return durable.SyncDir(boot)
}

// ErrNotBootable: a new root whose /boot the firmware could not boot
// this board from.
var ErrNotBootable = errors.New("not bootable on this board")

// checkViable refuses a new slot (src) that lacks a device tree or
// overlays/README that the running slot has. The firmware ignores an
// os_prefix whose kernel and board's .dtb are not both there (it then
// looks for the kernel outside the slots, finds none, and the trial
// boot hangs until the power is cycled), and reads overlays from
// outside the slot without its overlays/README.
func checkViable(src fs.FS, running string) error {
	need, err := filepath.Glob(filepath.Join(running, "*.dtb"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(running, "overlays", "README")); err == nil {
		need = append(need, filepath.Join(running, "overlays", "README"))
	}
	var missing []string
	for _, p := range need {
		rel, _ := filepath.Rel(running, p)
		if fi, err := fs.Stat(src, filepath.ToSlash(rel)); err != nil || !fi.Mode().IsRegular() {
			missing = append(missing, "/"+RootBoot+"/"+filepath.ToSlash(rel))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the new root file system lacks %s, which the running slot has: the firmware would not boot the new slot", ErrNotBootable, strings.Join(missing, ", "))
	}
	return nil
}

// targetCmdline is the running slot's cmdline.txt in boot made into
// slot target's.
func targetCmdline(boot string, running, target int) ([]byte, error) {
	cmd, err := os.ReadFile(filepath.Join(boot, SlotDir(running), "cmdline.txt"))
	if err != nil {
		return nil, err
	}
	if cmd, err = slotCmdline(cmd, target); err != nil {
		return nil, fmt.Errorf("%s/cmdline.txt: %w", SlotDir(running), err)
	}
	return cmd, nil
}

// writeFile writes r to a new file name, synced, and returns its
// length.
func writeFile(name string, r io.Reader) (int64, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	return n, errors.Join(err, f.Close())
}

// verifySlot compares slot target in boot with src, file by file,
// checks its cmdline.txt is the running slot's made into target's (its
// root= is the partition the trial boots), and that tryboot.txt names
// it.
func verifySlot(src fs.FS, boot string, running, target int) error {
	dst := os.DirFS(filepath.Join(boot, SlotDir(target)))
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "cmdline.txt" {
			return err
		}
		a, err := fileSum(src, p)
		if err != nil {
			return err
		}
		if b, err := fileSum(dst, p); err != nil || b != a {
			return fmt.Errorf("%s/%s read back from the card differs from the new root's (%v)", SlotDir(target), p, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	cmd, err := targetCmdline(boot, running, target)
	if err != nil {
		return err
	}
	if got, err := os.ReadFile(filepath.Join(boot, SlotDir(target), "cmdline.txt")); err != nil || !bytes.Equal(got, cmd) {
		return fmt.Errorf("%s/cmdline.txt read back from the card is %q, not %q (%v)", SlotDir(target), got, cmd, err)
	}
	try, err := os.ReadFile(filepath.Join(boot, "tryboot.txt"))
	if err != nil {
		return err
	}
	if n, _, err := configSlot(try); err != nil || n != target {
		return fmt.Errorf("tryboot.txt read back does not name slot %d (%v)", target, err)
	}
	return nil
}

func fileSum(fsys fs.FS, name string) ([32]byte, error) {
	f, err := fsys.Open(path.Clean(name))
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}
