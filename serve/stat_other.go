//go:build !linux

package serve

import "io/fs"

func sysID(fi fs.FileInfo) (dev, ino uint64, ctime int64) { return 0, 0, 0 }
