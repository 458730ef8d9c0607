// Command build makes the appliance's packages from this tree:
//
//	go run ./packaging/cmd/build deb [-arch amd64,arm64,armhf] [-out packaging/out]
//
//	go run ./packaging/cmd/build pi [-config FILE] [-site DIR] [-version V] [-appliance BIN] [-out packaging/out]
//
//	go run ./packaging/cmd/build rootfs [-arch amd64|arm64|arm] -out DIR
//
// deb builds Debian packages (Raspberry Pi OS is armhf) with dpkg-deb;
// oci a multi-arch OCI image (linux/amd64, arm64, arm/v7) without a
// container daemon, created at SOURCE_DATE_EPOCH or else the last
// commit's time; all builds the three. rootfs writes the image's file
// tree into DIR, as root (packaging/Dockerfile's build stage). pi writes appliance-rpi.img, a
// disk image to flash on an SD card for a Raspberry Pi 3, 4, 5 or Zero
// 2 W (gokrazy, arm64): -config and -site go onto its writable /perm
// partition (the default serves the demo site on port 80).
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

const maintainer = "appliance developers <appliance@example.invalid>"

func main() {
	what := ""
	if len(os.Args) > 1 {
		what = os.Args[1]
	}
	fl := flag.NewFlagSet("build", flag.ExitOnError)
	fl.Usage = func() {
		fmt.Fprintln(fl.Output(), "usage: build deb|oci|pi|all|rootfs [flags]\n\nflags:")
		fl.PrintDefaults()
	}
	archs := fl.String("arch", "amd64,arm64,armhf", "Debian architectures")
	out := fl.String("out", "packaging/out", "output directory")
	piConfig := fl.String("config", "", "pi: appliance.toml for the image (default: the site on port 80)")
	piSite := fl.String("site", "", "pi: the site's files (default: the demo site)")
	piHost := fl.String("hostname", "appliance", "pi: the board's host name")
	permMB := fl.Int64("perm-mb", defaultPermMB, "pi: size of the writable /perm partition in MiB")
	version := debVersion() // git log: once
	piVersion := fl.String("version", version, "pi: the appliance's version")
	piBinary := fl.String("appliance", "", "pi: a prebuilt linux/arm64 appliance binary, instead of building ./cmd/appliance")
	piKernel := fl.String("kernel", "", "pi: another gokrazy kernel package (its directory, with vmlinuz, device trees, overlays, config.txt and lib/modules) instead of "+kernelRPi+" (tests: qemu's)")
	switch what {
	case "deb", "oci", "pi", "all", "rootfs":
	case "-h", "-help", "--help", "help":
		fl.SetOutput(os.Stdout)
		fl.Usage()
		return
	default:
		fl.Usage()
		os.Exit(2)
	}
	fl.Parse(os.Args[2:])
	created := sourceTime()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fatal(err)
	}
	if what == "rootfs" {
		if err := buildRootfs(*archs, version, *out); err != nil {
			fatal(fmt.Errorf("rootfs: %w", err))
		}
		return
	}
	if what == "oci" || what == "all" {
		if err := buildOCI(version, created, *out); err != nil {
			fatal(fmt.Errorf("oci: %w", err))
		}
	}
	if what == "oci" {
		return
	}
	if what == "pi" || what == "all" {
		img := filepath.Join(*out, "appliance-rpi.img")
		if err := buildPi(piOptions{out: img, config: *piConfig, site: *piSite, hostname: *piHost, permMB: *permMB, version: *piVersion, binary: *piBinary, kernel: *piKernel}); err != nil {
			fatal(fmt.Errorf("pi: %w", err))
		}
		fmt.Println(img)
		if what == "pi" {
			return
		}
	}
	for _, arch := range strings.Split(*archs, ",") {
		path, err := buildDeb(arch, version, created, *out)
		if err != nil {
			fatal(fmt.Errorf("%s: %w", arch, err))
		}
		fmt.Println(path)
	}
}

// goBuild builds pkg, stripped and static, for linux/goarch into out;
// ldflags are added to -s -w.
func goBuild(out, pkg, goarch, goarm, ldflags string, tags ...string) error {
	args := []string{"build", "-trimpath", "-ldflags", "-s -w " + ldflags, "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	build := exec.Command("go", append(args, pkg)...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm)
	if o, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, o)
	}
	return nil
}

// debVersion is 0.1.0~git<date>.<commit>, or 0.1.0~dev outside git.
func debVersion() string {
	out, err := exec.Command("git", "log", "-1", "--format=%cd.%h", "--date=format:%Y%m%d").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return "0.1.0~dev"
	}
	return "0.1.0~git" + strings.TrimSpace(string(out))
}

var goArch = map[string][2]string{"amd64": {"amd64", ""}, "arm64": {"arm64", ""}, "armhf": {"arm", "6"}}

// sourceTime is when the source was last changed, for reproducible
// dates: SOURCE_DATE_EPOCH (reproducible-builds.org) if set, else the
// last commit's time, else now.
func sourceTime() time.Time {
	if v, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			fatal(fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", v))
		}
		return time.Unix(sec, 0).UTC()
	}
	out, err := exec.Command("git", "log", "-1", "--format=%ct").Output()
	if sec, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && perr == nil {
		return time.Unix(sec, 0).UTC()
	}
	fmt.Fprintln(os.Stderr, "build: no SOURCE_DATE_EPOCH and no git history: dated now, not reproducibly")
	return time.Now().UTC().Truncate(time.Second)
}

// buildRootfs writes the image's tree for one architecture (amd64,
// arm64 or arm, which is ARMv7 as in the image) into dir.
func buildRootfs(arch, version, dir string) error {
	if arch == "amd64,arm64,armhf" { // the flag's default
		arch = runtime.GOARCH
	}
	goarm := ""
	switch arch {
	case "amd64", "arm64":
	case "arm":
		goarm = "7"
	default:
		return fmt.Errorf("-arch %q: want amd64, arm64 or arm", arch)
	}
	bin := filepath.Join(dir, "usr/bin/appliance")
	if err := goBuild(bin, "./cmd/appliance", arch, goarm, "-X main.version="+version); err != nil {
		return err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	files, err := imageFiles(binary)
	if err != nil {
		return err
	}
	return writeTree(dir, files)
}

func buildDeb(arch, version string, created time.Time, out string) (string, error) {
	ga, ok := goArch[arch]
	if !ok {
		return "", fmt.Errorf("unknown architecture (want amd64, arm64 or armhf)")
	}
	root, err := os.MkdirTemp("", "appliance-deb")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	if err := os.Chmod(root, 0o755); err != nil { // it becomes /
		return "", err
	}

	if err := goBuild(filepath.Join(root, "usr/bin/appliance"), "./cmd/appliance", ga[0], ga[1], "-X main.version="+version); err != nil {
		return "", err
	}
	files := map[string]string{ // destination -> source
		"lib/systemd/system/appliance.service":        "packaging/systemd/appliance.service",
		"lib/systemd/system/appliance.socket":         "packaging/systemd/appliance.socket",
		"lib/systemd/system/appliance-https.socket":   "packaging/systemd/appliance-https.socket",
		"etc/appliance/appliance.toml":                "packaging/deb/appliance.toml",
		"usr/share/doc/appliance/copyright":           "packaging/deb/copyright",
		"usr/share/doc/appliance/config.example.toml": "config.example.toml",
		"usr/share/lintian/overrides/appliance":       "packaging/deb/lintian-overrides",
	}
	// The welcome site says where the configuration and the site root
	// are; it borrows the demo's style and icon.
	welcome, _ := filepath.Glob("packaging/deb/www/*")
	for _, f := range append(welcome, "cmd/appliance/demo/style.css", "cmd/appliance/demo/favicon.svg") {
		files["usr/share/appliance/www/"+filepath.Base(f)] = f
	}
	for dst, src := range files {
		if err := copyFile(src, filepath.Join(root, dst), 0o644); err != nil {
			return "", err
		}
	}
	// appliance(1), written by the binary from its own command definitions.
	man, err := exec.Command("go", "run", "./cmd/appliance", "man").Output()
	if err != nil {
		return "", fmt.Errorf("man page: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/share/man/man1"), 0o755); err != nil {
		return "", err
	}
	if err := writeGzip(filepath.Join(root, "usr/share/man/man1/appliance.1.gz"), string(man)); err != nil {
		return "", err
	}
	changelog := fmt.Sprintf("appliance (%s) unstable; urgency=medium\n\n  * Built from the appliance repository.\n\n -- %s  %s\n",
		version, maintainer, created.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	// A version without a Debian revision is a native package's: changelog.gz.
	if err := writeGzip(filepath.Join(root, "usr/share/doc/appliance/changelog.gz"), changelog); err != nil {
		return "", err
	}

	ctl := filepath.Join(root, "DEBIAN")
	if err := os.MkdirAll(ctl, 0o755); err != nil {
		return "", err
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if err := copyFile("packaging/deb/"+s, filepath.Join(ctl, s), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(ctl, "conffiles"), []byte("/etc/appliance/appliance.toml\n"), 0o644); err != nil {
		return "", err
	}
	sums, size, err := md5sums(root)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(ctl, "md5sums"), []byte(sums), 0o644); err != nil {
		return "", err
	}
	control := fmt.Sprintf(`Package: appliance
Version: %s
Architecture: %s
Maintainer: %s
Installed-Size: %d
Section: httpd
Priority: optional
Provides: httpd
Description: static-site HTTPS server for small machines
 One binary serves many static sites: virtual hosts, redirects and
 rewrites, content-coding negotiation with cached variants, conditional
 and range requests as RFC 9110 says, and HTTPS with manual or locally
 issued certificates. It runs as a hardened, socket-activated systemd
 service.
`, version, arch, maintainer, (size+1023)/1024)
	if err := os.WriteFile(filepath.Join(ctl, "control"), []byte(control), 0o644); err != nil {
		return "", err
	}
	deb := filepath.Join(out, fmt.Sprintf("appliance_%s_%s.deb", version, arch))
	if o, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, deb).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb: %v\n%s", err, o)
	}
	return deb, nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

func writeGzip(path, text string) error {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write([]byte(text))
	zw.Close()
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// md5sums lists the payload's files as dpkg wants, and their total size.
func md5sums(root string) (string, int64, error) {
	var lines []string
	var size int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(rel, "DEBIAN") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		size += int64(len(b))
		lines = append(lines, fmt.Sprintf("%x  %s", md5.Sum(b), rel))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n", size, err
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "build:", err)
	os.Exit(1)
}
