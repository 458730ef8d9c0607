package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
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

// containerConfig listens on unprivileged ports; state lives in a volume.
const containerConfig = `# appliance in a container: mount your site over /srv/site (or change
# root), and /var/lib/appliance as a volume for certificates.
[server]
http = ":8080"
state_dir = "/var/lib/appliance"

[[site]]
hosts = ["*"]
root = "/usr/share/appliance/www"
clean_urls = true
error_pages = { 404 = "/404.html" }
`

type platform struct{ arch, variant, goarm string }

var platforms = []platform{{"amd64", "", ""}, {"arm64", "", ""}, {"arm", "v7", "7"}}

// buildOCI writes a multi-arch image index as an OCI layout (out/oci) and
// one docker-loadable tarball per platform (out/appliance-ARCH.tar),
// daemonless, FROM scratch.
func buildOCI(version, out string) error {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		img, err := image(p, version)
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

func image(p platform, version string) (v1.Image, error) {
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
	cas, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return nil, fmt.Errorf("CA certificates (Debian package ca-certificates): %w", err)
	}
	files := map[string]tarFile{
		"usr/bin/appliance":                 {data: binary, mode: 0o755},
		"etc/passwd":                        {data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nappliance:x:%d:%d:appliance:/var/lib/appliance:/sbin/nologin\n", uid, uid)), mode: 0o644},
		"etc/group":                         {data: []byte(fmt.Sprintf("root:x:0:\nappliance:x:%d:\n", uid)), mode: 0o644},
		"etc/ssl/certs/ca-certificates.crt": {data: cas, mode: 0o644},
		"etc/appliance/appliance.toml":      {data: []byte(containerConfig), mode: 0o644},
		"var/lib/appliance/":                {mode: 0o700, owner: uid},
		"tmp/":                              {mode: 0o1777},
	}
	demo, _ := filepath.Glob("cmd/appliance/demo/*")
	for _, f := range demo {
		b, _ := os.ReadFile(f)
		files["usr/share/appliance/www/"+filepath.Base(f)] = tarFile{data: b, mode: 0o644}
	}
	// The licence the label names, and the notices of the Go modules
	// compiled into the binary.
	for dst, src := range map[string]string{"usr/share/doc/appliance/LICENSE": "LICENSE", "usr/share/doc/appliance/copyright": "packaging/deb/copyright"} {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		files[dst] = tarFile{data: b, mode: 0o644}
	}
	layer, err := tarball.LayerFromOpener(tarOpener(files), tarball.WithMediaType(types.OCILayer))
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
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()} // reproducible
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
// in a fixed order with fixed times: the same tree gives the same digest.
func tarOpener(files map[string]tarFile) tarball.Opener {
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
			h := &tar.Header{Name: n, ModTime: time.Unix(0, 0), Uid: f.owner, Gid: f.owner, Format: tar.FormatPAX}
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
