//go:build linux

package serve

import (
	"io/fs"
	"syscall"
)

// sysID returns the inode identity and change time of a file, which catch
// replacements that keep size and modification time.
func sysID(fi fs.FileInfo) (dev, ino uint64, ctime int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino), st.Ctim.Nano()
	}
	return 0, 0, 0
}
