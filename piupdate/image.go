// Package piupdate owns the A/B update of the Raspberry Pi image
// (gokrazy): reading a new root file system out of an image the builder
// wrote, writing it and its kernel to the slot the board is not
// running, booting it once on trial, committing it when the new
// appliance is healthy, and the admin endpoint and client that drive
// it.
//
// The card: partition 1 the boot FAT, 2 and 3 the two roots (squashfs,
// read-only), 4 /perm (kept by an update). The boot FAT holds the
// firmware, config.txt and two slots, slot2/ and slot3/, each a kernel
// with its device trees, overlays and a cmdline.txt whose root= names
// its partition (the Raspberry Pi firmware's os_prefix: kernel, device
// trees, overlays and cmdline.txt are read from the prefix). config.txt
// names the slot the board boots (os_prefix=slot2/). An update writes
// the other root partition, copies its /boot into the other slot,
// writes tryboot.txt naming that slot and reboots with the firmware's
// tryboot flag: the firmware reads tryboot.txt instead of config.txt
// for that one boot. The new system makes it permanent by rewriting
// config.txt's os_prefix, one byte (Commit); if it does not, init
// reboots at the deadline, and a crash or a power cut reboots too: the
// board comes back on the old slot, kernel and root.
package piupdate

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// The card's layout, as packaging/cmd/build writes it.
const (
	Sector    = 512
	RootBytes = 256 << 20 // each root partition
)

// partition is an MBR partition entry: where it starts and how long it
// is, in bytes.
type partition struct{ start, size int64 }

// readMBR returns the disk signature and the four primary partitions of
// the MBR (a classic DOS partition table) at the start of r.
func readMBR(r io.ReaderAt) (sig uint32, parts [4]partition, err error) {
	b := make([]byte, Sector)
	if _, err := r.ReadAt(b, 0); err != nil {
		return 0, parts, fmt.Errorf("partition table: %w", err)
	}
	if b[510] != 0x55 || b[511] != 0xaa {
		return 0, parts, errors.New("no MBR partition table (not a disk image)")
	}
	for i := range parts {
		e := b[446+16*i:]
		parts[i] = partition{int64(binary.LittleEndian.Uint32(e[8:])) * Sector, int64(binary.LittleEndian.Uint32(e[12:])) * Sector}
	}
	return binary.LittleEndian.Uint32(b[440:]), parts, nil
}

// squashfsSize is the length of the squashfs file system whose
// superblock starts b: its bytes_used (the partition after it is
// padding).
func squashfsSize(b []byte) (int64, error) {
	if len(b) < 96 || string(b[:4]) != "hsqs" {
		return 0, errors.New("not a squashfs file system")
	}
	if major := binary.LittleEndian.Uint16(b[28:]); major != 4 {
		return 0, fmt.Errorf("squashfs version %d, want 4", major)
	}
	n := binary.LittleEndian.Uint64(b[40:])
	if n < 96 || n > RootBytes {
		return 0, fmt.Errorf("squashfs of %d bytes: want at most the root partition's %d", n, RootBytes)
	}
	return int64(n), nil
}

// Image is what an update takes from an image file: the root file
// system, whose /boot holds the kernel, device trees and overlays of
// its slot.
type Image struct {
	Root       *io.SectionReader // partition 2's squashfs, bytes_used long
	RootSHA256 string
}

// ReadImage reads the image the builder wrote (appliance-rpi.img):
// root A's squashfs, hashed.
func ReadImage(r io.ReaderAt) (Image, error) {
	_, parts, err := readMBR(r)
	if err != nil {
		return Image{}, err
	}
	root := parts[1]
	if root.size < 96 {
		return Image{}, errors.New("the image has no root partition (2)")
	}
	sb := make([]byte, 96)
	if _, err := r.ReadAt(sb, root.start); err != nil {
		return Image{}, fmt.Errorf("root partition: %w", err)
	}
	n, err := squashfsSize(sb)
	if err != nil {
		return Image{}, fmt.Errorf("root partition: %w", err)
	}
	if n > root.size {
		return Image{}, fmt.Errorf("root partition: a squashfs of %d bytes in a partition of %d", n, root.size)
	}
	img := Image{Root: io.NewSectionReader(r, root.start, n)}
	h := sha256.New()
	if m, err := io.Copy(h, img.Root); err != nil {
		return Image{}, fmt.Errorf("root partition: %w", err)
	} else if m != n {
		return Image{}, fmt.Errorf("root partition: the image ends %d bytes into its squashfs of %d (cut short?)", m, n)
	}
	img.RootSHA256 = hex.EncodeToString(h.Sum(nil))
	return img, nil
}

// squashfsHeader checks that body starts with a squashfs superblock
// whose bytes_used is size, and returns a reader of the whole body.
func squashfsHeader(body io.Reader, size int64) (io.Reader, error) {
	sb := make([]byte, 96)
	if _, err := io.ReadFull(body, sb); err != nil {
		return nil, fmt.Errorf("reading the superblock: %w", err)
	}
	n, err := squashfsSize(sb)
	if err != nil {
		return nil, err
	}
	if n != size {
		return nil, fmt.Errorf("the squashfs says it is %d bytes long, the request %d", n, size)
	}
	return io.MultiReader(bytes.NewReader(sb), body), nil
}
