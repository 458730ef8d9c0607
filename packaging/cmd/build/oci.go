package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: numeric, non-root, with a home for the state.
const uid = 10001

type platform struct{ arch, variant, goarm string }

var platforms = []platform{{"amd64", "", ""}, {"arm64", "", ""}, {"arm", "v7", "7"}}

// buildOCI writes a multi-arch image index as an OCI layout (out/oci) and
// one docker-loadable tarball per platform (out/appliance-ARCH.tar),
// daemonless, FROM scratch.
func buildOCI(version string, created time.Time, out string) error {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		img, err := image(p, version, created)
		if err != nil {
			return fmt.Errorf("%s: %w", p.arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: p.arch, Variant: p.variant}},
		})
		// Docker tags allow no "~": the tarball is tagged latest.
		tag, err := name.NewTag("localhost/appliance:latest")
		if err != nil {
			return err
		}
		file := filepath.Join(out, "appliance-"+p.arch+p.variant+".tar")
		if err := tarball.WriteToFile(file, tag, img); err != nil {
			return err
		}
		fmt.Println(file)
	}
	dir := filepath.Join(out, "oci")
	os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		return err
	}
	fmt.Println(dir)
	return nil
}

func image(p platform, version string, created time.Time) (v1.Image, error) {
	bin, err := os.CreateTemp("", "appliance-bin")
	if err != nil {
		return nil, err
	}
	bin.Close()
	defer os.Remove(bin.Name())
	if err := goBuild(bin.Name(), "./cmd/appliance", p.arch, p.goarm, "-X main.version="+version); err != nil {
		return nil, err
	}
	binary, err := os.ReadFile(bin.Name())
	if err != nil {
		return nil, err
	}
	files, err := imageFiles(binary)
	if err != nil {
		return nil, err
	}
	return imageFromFiles(p, version, created, files)
}

// imageFiles is the image's tree (a trailing / marks a directory), read
// from this repository: the binary, users, CA certificates, the
// configuration in packaging/oci (serving /srv/site, which holds the
// welcome page), the licence and the notices.
func imageFiles(binary []byte) (map[string]tarFile, error) {
	cas, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return nil, fmt.Errorf("CA certificates (Debian package ca-certificates): %w", err)
	}
	files := map[string]tarFile{
		"usr/bin/appliance":                 {data: binary, mode: 0o755},
		"etc/passwd":                        {data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nappliance:x:%d:%d:appliance:/var/lib/appliance:/sbin/nologin\n", uid, uid)), mode: 0o644},
		"etc/group":                         {data: []byte(fmt.Sprintf("root:x:0:\nappliance:x:%d:\n", uid)), mode: 0o644},
		"etc/ssl/certs/ca-certificates.crt": {data: cas, mode: 0o644},
		"var/lib/appliance/":                {mode: 0o700, owner: uid},
		"tmp/":                              {mode: 0o1777},
	}
	site, _ := filepath.Glob("packaging/oci/site/*")
	from := map[string]string{
		"etc/appliance/appliance.toml":      "packaging/oci/appliance.toml",
		"srv/site/style.css":                "cmd/appliance/demo/style.css",
		"srv/site/favicon.svg":              "cmd/appliance/demo/favicon.svg",
		"usr/share/doc/appliance/LICENSE":   "LICENSE", // the licence the label names
		"usr/share/doc/appliance/copyright": "packaging/deb/copyright",
	}
	for _, f := range site {
		from["srv/site/"+filepath.Base(f)] = f
	}
	for dst, src := range from {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		files[dst] = tarFile{data: b, mode: 0o644}
	}
	return files, nil
}

// imageFromFiles makes the platform's image of one layer holding files.
func imageFromFiles(p platform, version string, created time.Time, files map[string]tarFile) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(tarOpener(files, created), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", p.arch, p.variant
	cf.Created = v1.Time{Time: created.UTC()}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint:   []string{"/usr/bin/appliance"},
		Cmd:          []string{"serve", "-config", "/etc/appliance/appliance.toml"},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "8443/tcp": {}},
		Volumes:      map[string]struct{}{"/var/lib/appliance": {}},
		WorkingDir:   "/",
		Healthcheck: &v1.HealthConfig{
			Test:     []string{"CMD", "/usr/bin/appliance", "health", "-config", "/etc/appliance/appliance.toml"},
			Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3,
		},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "appliance",
			"org.opencontainers.image.description": "static-site HTTPS server for small machines",
			"org.opencontainers.image.version":     version,
			"org.opencontainers.image.licenses":    "Apache-2.0", // text: /usr/share/doc/appliance/LICENSE
		},
	}
	return mutate.ConfigFile(img, cf)
}

type tarFile struct {
	data  []byte
	mode  int64
	owner int
}

// tarOpener writes files (a trailing / marks a directory), parents first,
// in a fixed order, all modified at mtime: the same tree and time give
// the same digest.
func tarOpener(files map[string]tarFile, mtime time.Time) tarball.Opener {
	return func() (io.ReadCloser, error) {
		names := make([]string, 0, len(files))
		dirs := map[string]bool{}
		for n := range files {
			names = append(names, n)
			for d := filepath.Dir(n); d != "." && d != "/"; d = filepath.Dir(d) {
				dirs[d+"/"] = true
			}
		}
		for d := range dirs {
			if _, ok := files[d]; !ok {
				names = append(names, d)
			}
		}
		sort.Strings(names)
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, n := range names {
			f, ok := files[n]
			h := &tar.Header{Name: n, ModTime: mtime, Uid: f.owner, Gid: f.owner, Format: tar.FormatPAX}
			switch {
			case n[len(n)-1] == '/':
				h.Typeflag, h.Mode = tar.TypeDir, 0o755
				if ok {
					h.Mode = f.mode
				}
			default:
				h.Typeflag, h.Mode, h.Size = tar.TypeReg, f.mode, int64(len(f.data))
			}
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
			if h.Typeflag == tar.TypeReg {
				tw.Write(f.data)
			}
		}
		tw.Close()
		return io.NopCloser(&buf), nil
	}
}

// writeTree writes files under dir as the image has them, owners
// included (which needs root): the Dockerfile's build stage makes its
// tree with it.
func writeTree(dir string, files map[string]tarFile) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names) // parents first
	for _, n := range names {
		f, p := files[n], filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if strings.HasSuffix(n, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		} else if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return err
		}
		// Chmod, not the umask, decides; 1777 needs the sticky bit.
		mode := fs.FileMode(f.mode & 0o777)
		if f.mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		if f.owner != 0 {
			if err := os.Lchown(p, f.owner, f.owner); err != nil {
				return fmt.Errorf("%s owned by %d: %w (run as root, as a Dockerfile's build stage does)", n, f.owner, err)
			}
		}
	}
	return nil
}
