package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestSourceTime: images and changelogs are dated SOURCE_DATE_EPOCH, or
// else the last commit's time (not 1970, not now).
func TestSourceTime(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	if got := sourceTime(); !got.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("with SOURCE_DATE_EPOCH: %v", got)
	}
	os.Unsetenv("SOURCE_DATE_EPOCH") // t.Setenv restores it
	out, err := exec.Command("git", "log", "-1", "--format=%ct").Output()
	if err != nil {
		t.Skip("no git history here")
	}
	sec, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if got := sourceTime(); got.Unix() != sec {
		t.Errorf("without SOURCE_DATE_EPOCH: %v, want the last commit's %v", got, time.Unix(sec, 0).UTC())
	}
}

// TestImageReproducible: the same files and time give the same image,
// dated that time, its files too.
func TestImageReproducible(t *testing.T) {
	files := map[string]tarFile{"usr/bin/appliance": {data: []byte("binary"), mode: 0o755}, "tmp/": {mode: 0o1777}, "var/lib/appliance/": {mode: 0o700, owner: uid}}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var digests []string
	for range 2 {
		img, err := imageFromFiles(platforms[0], "0.1.0~test", created, files)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
		cf, _ := img.ConfigFile()
		if !cf.Created.Time.Equal(created) {
			t.Errorf("created %v, want %v", cf.Created.Time, created)
		}
		tr := tar.NewReader(mutate.Extract(img))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if !h.ModTime.Equal(created) {
				t.Errorf("%s modified %v, want %v", h.Name, h.ModTime, created)
			}
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds, two digests: %v", digests)
	}
}
