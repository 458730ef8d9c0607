package main

import (
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// demoFS is the embedded demo site. An embed.FS dates its files at the
// zero time, which would leave them without Last-Modified: they get the
// executable's modification time instead (when it was built or
// installed), so that If-Modified-Since works as on any other site.
func demoFS() (fs.FS, error) {
	sub, err := fs.Sub(demoFiles, "demo")
	if err != nil {
		return nil, err
	}
	return datedFS{sub, demoTime()}, nil
}

var demoTime = sync.OnceValue(func() time.Time {
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil && fi.ModTime().Unix() > 0 {
			return fi.ModTime()
		}
	}
	return time.Now()
})

// datedFS gives every file of an fs.FS the modification time t.
type datedFS struct {
	fsys fs.FS
	t    time.Time
}

func (d datedFS) Open(name string) (fs.File, error) {
	f, err := d.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	return &datedFile{f, d.t}, nil
}

type datedFile struct {
	fs.File
	t time.Time
}

func (f *datedFile) Stat() (fs.FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return nil, err
	}
	return datedInfo{fi, f.t}, nil
}

// Seek keeps range requests working: embedded files can seek.
func (f *datedFile) Seek(offset int64, whence int) (int64, error) {
	if s, ok := f.File.(io.Seeker); ok {
		return s.Seek(offset, whence)
	}
	return 0, fs.ErrInvalid
}

func (f *datedFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if d, ok := f.File.(fs.ReadDirFile); ok {
		return d.ReadDir(n)
	}
	return nil, fs.ErrInvalid
}

type datedInfo struct {
	fs.FileInfo
	t time.Time
}

func (i datedInfo) ModTime() time.Time { return i.t }
