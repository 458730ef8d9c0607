package piupdate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// fatVolume is the boot partition's FAT16 file system, read as the Pi
// firmware reads it: files by their 8.3 names. Enough to read which
// slot config.txt boots and rewrite it in place (one byte), and to
// hash a slot's kernel; a slot is written through the kernel's vfat
// (Board.installSlot).
type fatVolume struct {
	r                     io.ReaderAt
	fatStart, rootStart   int64
	dataStart, clusterLen int64
	rootEntries           int64
	clusters              int64 // data clusters
}

// maxFAT16Clusters is the most data clusters a FAT16 volume has (more
// make it FAT32): copyFile's table of them is 128 KiB at most.
const maxFAT16Clusters = 65524

// openFAT reads the boot sector of a FAT16 volume.
func openFAT(r io.ReaderAt) (*fatVolume, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("FAT boot sector: %w", err)
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(b[o:])) }
	bps, spc, reserved, fats, rootEntries, fatSize := le16(11), int64(b[13]), le16(14), int64(b[16]), le16(17), le16(22)
	total := le16(19)
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(b[32:]))
	}
	if b[510] != 0x55 || b[511] != 0xaa || (bps != 512 && bps != 1024 && bps != 2048 && bps != 4096) ||
		spc == 0 || spc&(spc-1) != 0 || reserved == 0 || fats == 0 || rootEntries == 0 || fatSize == 0 {
		return nil, errors.New("not a FAT16 file system")
	}
	v := &fatVolume{r: r, fatStart: reserved * bps, rootEntries: rootEntries, clusterLen: spc * bps}
	v.rootStart = v.fatStart + fats*fatSize*bps
	v.dataStart = v.rootStart + (rootEntries*32+bps-1)/bps*bps
	v.clusters = (total*bps - v.dataStart) / v.clusterLen
	if v.clusters <= 0 || v.clusters > fatSize*bps/2-2 {
		return nil, errors.New("not a FAT16 file system: its sizes disagree")
	}
	if v.clusters > maxFAT16Clusters {
		return nil, fmt.Errorf("not a FAT16 file system: %d clusters", v.clusters)
	}
	return v, nil
}

// shortName is name as an 8.3 directory entry spells it: "CMDLINE TXT".
func shortName(name string) (string, bool) {
	base, ext, _ := strings.Cut(strings.ToUpper(name), ".")
	if base == "" || len(base) > 8 || len(ext) > 3 {
		return "", false
	}
	return fmt.Sprintf("%-8s%-3s", base, ext), true
}

// maxDir bounds a subdirectory read while a path is looked up.
const maxDir = 1 << 20

// find returns the first cluster and size of the file at path ("a/b",
// each part an 8.3 name), from the root directory down.
func (v *fatVolume) find(path string) (cluster, size int64, err error) {
	parts := strings.Split(path, "/")
	dir := make([]byte, 32*v.rootEntries)
	if _, err := v.r.ReadAt(dir, v.rootStart); err != nil {
		return 0, 0, err
	}
	for i, name := range parts {
		want, ok := shortName(name)
		if !ok {
			return 0, 0, fmt.Errorf("%s: not an 8.3 name", name)
		}
		isDir := i < len(parts)-1
		c, n, found := int64(0), int64(0), false
		for e := dir; len(e) >= 32 && e[0] != 0; e = e[32:] { // 0: the end of the directory
			attr := e[11]
			if e[0] == 0xe5 || attr&0x08 != 0 || attr == 0x0f || (attr&0x10 != 0) != isDir {
				continue // deleted, the volume label, a long name, not the kind wanted
			}
			if string(e[:11]) == want {
				c, n, found = int64(binary.LittleEndian.Uint16(e[26:])), int64(binary.LittleEndian.Uint32(e[28:])), true
				break
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("%s: not in the boot partition", path)
		}
		if (n > 0 || isDir) && (c < 2 || c >= v.clusters+2) {
			return 0, 0, fmt.Errorf("%s: starts at cluster %d, outside the volume", path, c)
		}
		if !isDir {
			return c, n, nil
		}
		var b bytes.Buffer
		if err := v.copyChain(&b, c, maxDir, true, path); err != nil {
			return 0, 0, err
		}
		dir = b.Bytes()
	}
	return 0, 0, fmt.Errorf("%s: not a file", path)
}

// offset is where cluster c starts.
func (v *fatVolume) offset(c int64) int64 { return v.dataStart + (c-2)*v.clusterLen }

// copyFile copies the file at path to w, following its cluster chain;
// a file larger than max is refused.
func (v *fatVolume) copyFile(w io.Writer, path string, max int64) error {
	c, size, err := v.find(path)
	if err != nil {
		return err
	}
	if size > max {
		return fmt.Errorf("%s: %d bytes, more than %d", path, size, max)
	}
	return v.copyChain(w, c, size, false, path)
}

// copyChain copies size bytes from cluster c on, following the cluster
// chain (the FAT read once, 128 KiB at most on FAT16) in runs of
// contiguous clusters; whole, the chain to its end (a directory, size
// its bound).
func (v *fatVolume) copyChain(w io.Writer, c, size int64, whole bool, name string) error {
	fat := make([]byte, 2*(v.clusters+2))
	if _, err := v.r.ReadAt(fat, v.fatStart); err != nil {
		return err
	}
	next := func(c int64) int64 { return int64(binary.LittleEndian.Uint16(fat[2*c:])) }
	for left, hops := size, int64(0); left > 0; {
		if whole && c >= 0xfff8 {
			return nil // the chain's end
		}
		// A run: c and the clusters that follow it on the volume.
		if c < 2 || c >= v.clusters+2 {
			return fmt.Errorf("%s: a broken cluster chain", name)
		}
		n := int64(1)
		for ; n*v.clusterLen < left && c+n < v.clusters+2 && next(c+n-1) == c+n; n++ {
		}
		if hops += n; hops > v.clusters {
			return fmt.Errorf("%s: a cluster chain in a loop", name)
		}
		run := min(left, n*v.clusterLen)
		if _, err := io.Copy(w, io.NewSectionReader(v.r, v.offset(c), run)); err != nil {
			return err
		}
		left -= run
		c = next(c + n - 1)
	}
	if whole {
		return fmt.Errorf("%s: a directory larger than %d bytes", name, size)
	}
	return nil
}

// fileOffset is where byte i of the file whose first cluster is c lies
// on the volume: the place to rewrite it in place (config.txt's slot).
func (v *fatVolume) fileOffset(c, i int64) (int64, error) {
	fat := make([]byte, 2*(v.clusters+2))
	if _, err := v.r.ReadAt(fat, v.fatStart); err != nil {
		return 0, err
	}
	for k := i / v.clusterLen; ; k-- {
		if c < 2 || c >= v.clusters+2 {
			return 0, errors.New("a broken cluster chain")
		}
		if k == 0 {
			return v.offset(c) + i%v.clusterLen, nil
		}
		c = int64(binary.LittleEndian.Uint16(fat[2*c:]))
	}
}
