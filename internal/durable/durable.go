// Package durable writes files so that a power cut leaves the old
// content or the new, never a part: what a board that is unplugged at
// any moment needs for its keys, its release records and its boot
// files.
package durable

import (
	"os"
	"path/filepath"
)

// WriteFile writes data to name through a temporary file in the same
// directory, synced, renamed over name; then the directory is synced.
func WriteFile(name string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // gone once renamed; left by an error
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(name))
}

// SyncDir syncs a directory: the names created, renamed or removed in
// it reach the disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
