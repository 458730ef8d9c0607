package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"appliance/config"
	"appliance/piupdate"
)

// The gokrazy platform the Raspberry Pi image is made of, pinned. The
// kernel is arm64: Raspberry Pi 3, 3+, 4, 400, 5, Zero 2 W, CM3/4/5.
const (
	kernelRPi = "github.com/gokrazy/kernel.rpi@v0.0.0-20251127164438-9778ec0261de"
	firmware  = "github.com/gokrazy/firmware@v0.0.0-20260522070551-527ce0ed43cf"
)

// Partition layout, in 512-byte sectors, as gokrazy expects it: boot
// (FAT: the firmware, config.txt and a slot of kernel files for each
// root), root A (squashfs, read-only), root B (empty: appliance update
// writes there, see package piupdate), perm (ext4, writable).
const (
	sector        = 512
	bootStart     = 8192               // 4 MiB, aligned for SD cards
	bootSectors   = 256 << 20 / sector // two slots of ~50 MiB each, and room to grow
	rootSectors   = piupdate.RootBytes / sector
	defaultPermMB = 512
)

type piOptions struct {
	out      string // the image file
	config   string // appliance.toml for /perm/appliance; "" the default
	site     string // the site's files for /perm/appliance/site; "" the demo
	hostname string
	permMB   int64
	version  string // the appliance's version (-X main.version)
	binary   string // a prebuilt linux/arm64 appliance; "" builds ./cmd/appliance
	kernel   string // a gokrazy kernel package's directory; "" kernelRPi
}

// defaultPiConfig serves the site on /perm over plain HTTP on every
// interface; the state directory is on /perm too. The admin listener
// (health, metrics, the log) answers on the LAN.
const defaultPiConfig = `# The appliance on a Raspberry Pi: this file is /perm/appliance/appliance.toml
# on the fourth (ext4) partition of the card. Every key is in
# config.example.toml; sites and state must stay under /perm.
[server]
http = ":80"
state_dir = "/perm/appliance/state"

# http://<board>:8081/log is the appliance's recent log, /healthz its
# health, /metrics its metrics: for a private network only. Remove this
# table where the board's LAN is not trusted.
[admin]
listen = ":8081"

[[site]]
root = "/perm/appliance/site"
clean_urls = true
# error_pages = { 404 = "/404.html" }   # a page the site has; refused at build if it lacks it
`

// piSite is where the image puts the -site files.
const piSite = "/perm/appliance/site"

// checkPiConfig checks the image's config as the appliance on the board
// will, and then for the board: listeners that the LAN reaches, sites
// where the image puts them, state and logs on the writable partition.
// site is the directory that becomes piSite. Errors name file:line.
func checkPiConfig(file string, data []byte, site string) error {
	onImage := func(p string) (string, bool) {
		if rest, ok := strings.CutPrefix(p, piSite); ok && (rest == "" || rest[0] == '/') {
			return filepath.Join(site, rest), true
		}
		return "", false // not on the card: piRules says so
	}
	_, err := config.ParseFor(file, data, config.Target{Path: onImage, Rules: piRules})
	return err
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	path = filepath.Clean(path)
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// piRules are the checks for a config that runs on the image: a
// read-only root file system, /perm (and /var, a link into it) the only
// persistent writable place, /tmp and /run in memory, an address from
// DHCP, and only the config and the site put on the card.
func piRules(c *config.Config, errorf func(key, format string, args ...any)) {
	piListenerRules(c, errorf)
	for i, s := range c.Sites {
		key := fmt.Sprintf("site.%d", i)
		piSiteRootRule(key, s, errorf)
		piSiteFileRules(key, s, errorf)
	}
	if p := c.ACME.CARoot; p != "" && !under(p, piSite) {
		errorf("acme.ca_root", "ca_root %q is not on the image: the image holds only the config and the site (%s)", p, piSite)
	}
	piWritablePathRules(c, errorf)
}

// piListenerRules refuses listeners the LAN cannot reach: the board's
// loopback, or an address of its own, which DHCP decides.
func piListenerRules(c *config.Config, errorf func(key, format string, args ...any)) {
	for _, l := range []struct{ key, addr string }{
		{"server.http", c.Server.HTTP}, {"server.https", c.Server.HTTPS}, {"admin.listen", c.Admin.Listen},
	} {
		host, port, err := net.SplitHostPort(l.addr)
		if l.addr == "" || err != nil {
			continue
		}
		ip := net.ParseIP(host)
		switch {
		case host == "localhost" || ip != nil && ip.IsLoopback():
			errorf(l.key, "%s = %q listens on the board's loopback only: nothing off the board can reach it; use \":%s\" (every interface)", l.key, l.addr, port)
		case host != "" && !ip.IsUnspecified():
			errorf(l.key, "%s = %q: the board's address comes from DHCP, so it cannot be named here; use \":%s\" (every interface)", l.key, l.addr, port)
		}
	}
}

// piSiteRootRule refuses a site root outside piSite, where the image
// puts the site.
func piSiteRootRule(key string, s config.Site, errorf func(key, format string, args ...any)) {
	if s.Root != "" && !under(s.Root, piSite) {
		errorf(key+".root", "root %q is not on the image: the image puts the site (-site DIR) in %s, on the card's fourth partition; use that or a directory in it", s.Root, piSite)
	}
}

// piSiteFileRules refuses a site's certificate files that are not on
// the image, and a private key that is, since only the site is, where
// anyone can download it.
func piSiteFileRules(key string, s config.Site, errorf func(key, format string, args ...any)) {
	for _, f := range []struct{ key, path string }{{"cert", s.Cert}, {"key", s.Key}, {"client_ca", s.ClientCA}} {
		switch {
		case f.path == "":
		case !under(f.path, piSite):
			errorf(key+"."+f.key, "%s %q is not on the image: the image holds only the config and the site (%s); use tls = \"acme\" or \"local\"", f.key, f.path, piSite)
		case f.key == "key":
			errorf(key+".key", "key %q is inside the site's files: anyone could download it", f.path)
		}
	}
}

// piWritablePathRules refuses a state directory, access log, log file
// or PID file that the board cannot write, or would lose at each boot.
func piWritablePathRules(c *config.Config, errorf func(key, format string, args ...any)) {
	persistent := func(p string) bool { return under(p, "/perm") || under(p, "/var") }
	if sd := c.Server.StateDir; (keepsTLSState(c.Sites) || sd != config.DefaultStateDir) && !persistent(sd) {
		errorf("server.state_dir", "state_dir %q is not on the card's writable partition: the root file system is read-only and /tmp and /run are lost at each boot; use \"/perm/appliance/state\"", sd)
	}
	if a := c.Server.AccessLog; a != "" && a != "stdout" && !persistent(a) {
		errorf("server.access_log", "access_log %q is not on the card's writable partition (the root file system is read-only; /tmp and /run are memory); use a file under /perm, or \"stdout\" for the console", a)
	}
	if l := c.Server.LogFile; l != "" && !persistent(l) {
		errorf("server.log_file", "log_file %q is not on the card's writable partition (the root file system is read-only; /tmp and /run are memory); use a file under /perm", l)
	}
	if p := c.Server.PIDFile; p != "" && !persistent(p) && !under(p, "/tmp") && !under(p, "/run") {
		errorf("server.pid_file", "pid_file %q is on the read-only root file system; use /run/appliance.pid or leave it out", p)
	}
}

// keepsTLSState reports whether a site's certificates live in the state
// directory: tls = "local" or "acme".
func keepsTLSState(sites []config.Site) bool {
	for _, s := range sites {
		if s.TLS == "local" || s.TLS == "acme" {
			return true
		}
	}
	return false
}

// buildPi writes a disk image to flash on an SD card.
func buildPi(opt piOptions) error {
	// The config first: one that cannot work on the board is refused
	// before anything is built.
	configFile, src, err := piConfig(opt)
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "appliance-pi")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := buildPiPrograms(tmp, opt.version, opt.binary); err != nil {
		return err
	}
	kernelDir := opt.kernel
	if kernelDir == "" {
		if kernelDir, err = moduleDir(kernelRPi); err != nil {
			return err
		}
	}
	slot := filepath.Join(tmp, "slot")
	if err := stageSlot(slot, kernelDir); err != nil {
		return err
	}
	firmwareDir, err := moduleDir(firmware)
	if err != nil {
		return err
	}

	var sig [4]byte // the disk signature: root=PARTUUID=<sig>-02
	rand.Read(sig[:])
	partuuid := fmt.Sprintf("%08x", binary.LittleEndian.Uint32(sig[:]))

	f, err := os.Create(opt.out)
	if err != nil {
		return err
	}
	defer f.Close()
	permStart := int64(bootStart + bootSectors + 2*rootSectors)
	permSectors := opt.permMB << 20 / sector
	if err := f.Truncate((permStart + permSectors) * sector); err != nil { // sparse
		return err
	}
	if err := writeBootPartition(f, tmp, slot, kernelDir, firmwareDir, partuuid); err != nil {
		return err
	}
	if err := writeRootPartition(f, tmp, slot, kernelDir, opt.hostname, configFile); err != nil {
		return err
	}
	if err := writePermPartition(f, opt, tmp, src, configFile, permStart, permSectors); err != nil {
		return err
	}
	if err := writeMBR(f, sig, permStart, permSectors); err != nil {
		return err
	}
	return f.Close()
}

// piConfig reads the image's config (-config, or the default) and
// checks it for the board against the site's files (-site, or the
// demo). It returns the config and the site's directory.
func piConfig(opt piOptions) (configFile []byte, site string, err error) {
	configFile, configName := []byte(defaultPiConfig), "appliance.toml (the image's default)"
	if opt.config != "" {
		if configFile, err = os.ReadFile(opt.config); err != nil {
			return nil, "", err
		}
		configName = opt.config
	}
	site = opt.site
	if site == "" {
		site = "cmd/appliance/demo"
	}
	if err := checkPiConfig(configName, configFile, site); err != nil {
		return nil, "", fmt.Errorf("the config cannot work on the board:\n%w", err)
	}
	return configFile, site, nil
}

// buildPiPrograms builds the image's programs, for linux/arm64, into
// dir: the appliance (version, or the prebuilt binary), its init, and
// gokrazy's services.
func buildPiPrograms(dir, version, binary string) error {
	stamp := time.Now().UTC().Format(time.RFC3339)
	bins := map[string]string{
		"appliance": "./cmd/appliance",
		"init":      "./packaging/pi/init",
		"dhcp":      "github.com/gokrazy/gokrazy/cmd/dhcp",
		"ntp":       "github.com/gokrazy/gokrazy/cmd/ntp",
		"randomd":   "github.com/gokrazy/gokrazy/cmd/randomd",
	}
	if binary != "" {
		delete(bins, "appliance")
		if err := copyFile(binary, filepath.Join(dir, "appliance"), 0o755); err != nil {
			return err
		}
	}
	for name, pkg := range bins {
		ldflags := "-X main.buildTimestamp=" + stamp
		if name == "appliance" {
			ldflags = "-X main.version=" + version
		}
		if err := goBuild(filepath.Join(dir, name), pkg, "arm64", "", ldflags, "gokrazy", "netgo", "osusergo"); err != nil {
			return err
		}
	}
	return nil
}

// writeBootPartition writes the boot partition: FAT, made with
// dosfstools and filled with mtools: the firmware, config.txt booting
// slot 2, and slot2/ (the kernel's files from slot, and a cmdline.txt
// booting root A, partition 2 of the disk with signature partuuid).
// One FAT, as the firmware reads it and piupdate rewrites config.txt.
func writeBootPartition(f *os.File, tmp, slot, kernelDir, firmwareDir, partuuid string) error {
	cmdline := "console=tty1 root=PARTUUID=" + partuuid + "-02 init=/gokrazy/init rootwait panic=10 oops=panic"
	bootDir, bootImg := filepath.Join(tmp, "boot"), filepath.Join(tmp, "boot.img")
	if err := stageBoot(bootDir, slot, kernelDir, firmwareDir, cmdline); err != nil {
		return fmt.Errorf("boot partition: %w", err)
	}
	if err := run("dosfstools", "mkfs.vfat", "-C", "-F", "16", "-f", "1", "-n", "BOOT", bootImg, fmt.Sprint(bootSectors*sector/1024)); err != nil {
		return err
	}
	entries, _ := filepath.Glob(filepath.Join(bootDir, "*"))
	if err := run("mtools", "mcopy", append(append([]string{"-s", "-Q", "-i", bootImg}, entries...), "::/")...); err != nil {
		return err
	}
	if err := copyAt(f, bootStart, bootSectors, bootImg); err != nil {
		return fmt.Errorf("boot partition: %w", err)
	}
	return nil
}

// writeRootPartition writes root A: read-only squashfs, made with
// squashfs-tools, from the programs built in tmp and the slot's kernel
// files in /boot (what an update copies into the other slot).
func writeRootPartition(f *os.File, tmp, slot, kernelDir, hostname string, configFile []byte) error {
	rootDir, rootImg := filepath.Join(tmp, "root"), filepath.Join(tmp, "root.squashfs")
	if err := stageRoot(rootDir, tmp, kernelDir, hostname, configFile); err != nil {
		return fmt.Errorf("root file system: %w", err)
	}
	if err := os.CopyFS(filepath.Join(rootDir, piupdate.RootBoot), os.DirFS(slot)); err != nil {
		return fmt.Errorf("root file system: %w", err)
	}
	if err := run("squashfs-tools", "mksquashfs", rootDir, rootImg, "-noappend", "-all-root", "-comp", "gzip", "-quiet", "-no-progress"); err != nil {
		return err
	}
	if err := copyAt(f, bootStart+bootSectors, rootSectors, rootImg); err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	return nil
}

// writePermPartition writes perm: ext4 with the config, the site (from
// src) and an empty state_dir, made with e2fsprogs straight into the
// image file at permStart.
func writePermPartition(f *os.File, opt piOptions, tmp, src string, configFile []byte, permStart, permSectors int64) error {
	perm := filepath.Join(tmp, "perm")
	if err := stagePerm(perm, src, opt.site == "", configFile); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return run("e2fsprogs", "mkfs.ext4", "-q", "-F", "-L", "perm", "-d", perm,
		"-E", fmt.Sprintf("offset=%d,root_owner=0:0", permStart*sector),
		opt.out, fmt.Sprintf("%dk", permSectors*sector/1024))
}

// stagePerm lays out the perm file system: in appliance/, the config,
// the site copied from src, an empty state directory and the LICENSE.
// demo puts the image's own welcome page in the site.
func stagePerm(perm, src string, demo bool, configFile []byte) error {
	site := filepath.Join(perm, "appliance", "site")
	if err := os.MkdirAll(filepath.Join(perm, "appliance"), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(perm, "appliance", "state"), 0o700); err != nil {
		return err
	}
	if err := os.CopyFS(site, os.DirFS(src)); err != nil {
		return fmt.Errorf("site %s: %w", src, err)
	}
	if demo {
		// The demo's style and icon, with the image's own welcome page:
		// the demo's says that no configuration was given.
		if err := copyFile("packaging/pi/www/index.html", filepath.Join(site, "index.html"), 0o644); err != nil {
			return err
		}
	}
	if err := copyFile("LICENSE", filepath.Join(perm, "appliance", "LICENSE"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(perm, "appliance", "appliance.toml"), configFile, 0o644)
}

// writeMBR writes the partition table, last: MBR, the disk signature
// sig in it, then boot, root A, root B and perm.
func writeMBR(f *os.File, sig [4]byte, permStart, permSectors int64) error {
	mbr := make([]byte, sector)
	copy(mbr[440:], sig[:])
	parts := []struct {
		typ          byte
		start, count int64
	}{
		{0x0e, bootStart, bootSectors},                             // FAT16 (LBA)
		{0x83, bootStart + bootSectors, rootSectors},               // Linux
		{0x83, bootStart + bootSectors + rootSectors, rootSectors}, // Linux
		{0x83, permStart, permSectors},                             // Linux
	}
	for i, p := range parts {
		e := mbr[446+16*i:]
		copy(e[1:4], []byte{0xfe, 0xff, 0xff}) // CHS unused: LBA only
		e[4] = p.typ
		copy(e[5:8], []byte{0xfe, 0xff, 0xff})
		binary.LittleEndian.PutUint32(e[8:], uint32(p.start))
		binary.LittleEndian.PutUint32(e[12:], uint32(p.count))
	}
	mbr[510], mbr[511] = 0x55, 0xaa
	_, err := f.WriteAt(mbr, 0)
	return err
}

// moduleDir downloads a module (verified against go.sum's checksum
// database) and returns its directory.
func moduleDir(mod string) (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Error != "" {
		return "", fmt.Errorf("go mod download %s: %v %s", mod, err, m.Error)
	}
	return m.Dir, nil
}

// copyAt copies file into the partition at start, count sectors long.
func copyAt(f *os.File, start, count int64, file string) error {
	src, err := os.Open(file)
	if err != nil {
		return err
	}
	defer src.Close()
	if fi, err := src.Stat(); err != nil || fi.Size() > count*sector {
		return fmt.Errorf("%s does not fit its partition (%d MiB)", filepath.Base(file), count*sector>>20)
	}
	_, err = io.Copy(io.NewOffsetWriter(f, start*sector), src)
	return err
}

// stageSlot lays out a slot's kernel files, as the firmware reads them
// under os_prefix: the kernel, the device trees and the overlays, with
// overlays/README (without it the firmware looks for the overlays
// outside the slot).
func stageSlot(dir, kernelDir string) error {
	for _, g := range []string{"vmlinuz", "*.dtb", "overlays/*.dtbo", "overlays/overlay_map.dtb", "overlays/README"} {
		matches, err := filepath.Glob(filepath.Join(kernelDir, g))
		if err != nil {
			return err
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(kernelDir, m)
			if err := copyFile(m, filepath.Join(dir, rel), 0o644); err != nil {
				return err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "vmlinuz")); err != nil {
		return fmt.Errorf("kernel %s: %w", kernelDir, err)
	}
	readme := filepath.Join(dir, "overlays", "README")
	if _, err := os.Stat(readme); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(readme), 0o755); err != nil {
			return err
		}
		return os.WriteFile(readme, []byte("The device tree overlays of this slot's kernel.\n"), 0o644)
	}
	return nil
}

// stageBoot lays out the FAT boot file system the Raspberry Pi
// firmware reads: the firmware, config.txt (the kernel package's, and
// os_prefix=slot2/), and slot2/: the kernel's files and cmdline.txt.
func stageBoot(dir, slot, kernelDir, firmwareDir, cmdline string) error {
	matches := []string{}
	for _, g := range []string{"*.bin", "*.dat", "*.elf"} {
		m, err := filepath.Glob(filepath.Join(firmwareDir, g))
		if err != nil {
			return err
		}
		matches = append(matches, m...)
	}
	for _, m := range matches {
		if err := copyFile(m, filepath.Join(dir, filepath.Base(m)), 0o644); err != nil {
			return err
		}
	}
	config, err := os.ReadFile(filepath.Join(kernelDir, "config.txt"))
	if err != nil {
		return err
	}
	config = append(bytes.TrimRight(config, "\n"), "\n\n# The slot the firmware boots: its kernel, device trees, overlays and\n"+
		"# cmdline.txt. appliance update writes the other slot and tryboot.txt,\n"+
		"# then commits it here. Keep this line as it is.\n[all]\nos_prefix="+piupdate.SlotDir(2)+"/\n"...)
	if err := os.WriteFile(filepath.Join(dir, "config.txt"), config, 0o644); err != nil {
		return err
	}
	slotDir := filepath.Join(dir, piupdate.SlotDir(2))
	if err := os.CopyFS(slotDir, os.DirFS(slot)); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(slotDir, "cmdline.txt"), []byte(cmdline+"\n"), 0o644)
}

// stageRoot lays out gokrazy's root file system: its init and services
// in /gokrazy, the appliance in /user, the kernel's modules, /etc, and
// the mount points.
func stageRoot(dir, bins, kernelDir, hostname string, config []byte) error {
	for _, d := range []string{"bin", "dev", "etc/appliance", "etc/gokrazy", "etc/ssl", "gokrazy", "lib", "mnt", "perm", "proc", "run", "sys", "tmp", "user"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, b := range []struct{ name, to string }{
		{"dhcp", "gokrazy/dhcp"}, {"init", "gokrazy/init"}, {"ntp", "gokrazy/ntp"}, {"randomd", "gokrazy/randomd"},
		{"appliance", "user/appliance"},
	} {
		if err := copyFile(filepath.Join(bins, b.name), filepath.Join(dir, b.to), 0o755); err != nil {
			return err
		}
	}
	if err := os.CopyFS(filepath.Join(dir, "lib"), os.DirFS(filepath.Join(kernelDir, "lib"))); err != nil {
		return err
	}
	cas, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return fmt.Errorf("CA certificates for the image (Debian package ca-certificates): %w", err)
	}
	for name, data := range map[string][]byte{
		"etc/appliance/appliance.toml":  config,
		"etc/gokrazy/mountdevices.json": []byte("[]"),
		"etc/hostname":                  []byte(hostname),
		"etc/hosts":                     []byte("127.0.0.1 localhost\n::1 localhost\n"),
		"etc/ssl/ca-bundle.pem":         cas, // one of the paths Go's crypto/x509 reads
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o444); err != nil {
			return err
		}
	}
	if err := os.Symlink("/tmp/resolv.conf", filepath.Join(dir, "etc/resolv.conf")); err != nil { // written by DHCP
		return err
	}
	return os.Symlink("/perm/var", filepath.Join(dir, "var"))
}

// run runs a command from a Debian package, saying which when it is
// missing.
func run(pkg string, name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("%s (Debian package %s) is needed for the Raspberry Pi image: install it", name, pkg)
	}
	if err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, out)
	}
	return nil
}
