package packaging

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// kernelQEMU is gokrazy's arm64 kernel for qemu's virt machine: the
// smoke test boots the Raspberry Pi image's root file system with it.
const kernelQEMU = "github.com/gokrazy/kernel.arm64@v0.0.0-20260705071517-37841c4d6ff1"

// TestPiConfigRefused: the builder refuses a desktop config for the
// board before it builds anything, saying where and why.
func TestPiConfigRefused(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "desktop.toml")
	os.WriteFile(config, []byte("[server]\nhttp = \"127.0.0.1:8080\"\n[[site]]\nroot = \""+dir+"\"\n"), 0o644)
	build := exec.Command("go", "run", "./packaging/cmd/build", "pi", "-out", dir, "-config", config)
	build.Dir = ".."
	out, err := build.CombinedOutput()
	if err == nil || !strings.Contains(string(out), config+":2: server.http = \"127.0.0.1:8080\" listens on the board's loopback only") ||
		!strings.Contains(string(out), config+":4: root \""+dir+"\" is not on the image") {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "appliance-rpi.img")); err == nil {
		t.Error("an image was written")
	}
}

// TestPiImage builds the Raspberry Pi image with an injected config and
// site, checks its partition table and file systems with the standard
// tools, and boots it under qemu-system-aarch64: the site answers
// through a forwarded port, the appliance's log shows on the serial
// console and on the admin listener's /log. It takes minutes (it
// emulates an arm64 machine): -short skips it.
func TestPiImage(t *testing.T) {
	piTools(t)
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>hello from the board</h1>\n"), 0o644)
	config := filepath.Join(dir, "appliance.toml")
	os.WriteFile(config, []byte("[server]\nhttp = \":80\"\nstate_dir = \"/perm/appliance/state\"\n[admin]\nlisten = \":8081\"\n[[site]]\nroot = \"/perm/appliance/site\"\n"), 0o644)
	img := buildPi(t, dir, "-config", config, "-site", site, "-hostname", "pi-test")

	// The partition table: boot FAT, root A, root B, perm.
	out, err := exec.Command("sfdisk", "--json", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		PartitionTable struct {
			ID         string
			Partitions []struct {
				Start, Size int64
				Type        string
			}
		}
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	parts := table.PartitionTable.Partitions
	if len(parts) != 4 || parts[0].Type != "e" || parts[0].Start != 8192 || parts[1].Type != "83" || parts[3].Type != "83" {
		t.Fatalf("partition table: %s", out)
	}
	for i := 1; i < 4; i++ {
		if parts[i].Start != parts[i-1].Start+parts[i-1].Size {
			t.Errorf("partition %d does not follow %d: %s", i+1, i, out)
		}
	}
	extract := func(i int) string {
		p := filepath.Join(dir, fmt.Sprintf("part%d", i+1))
		src, _ := os.Open(img)
		defer src.Close()
		dst, _ := os.Create(p)
		defer dst.Close()
		if _, err := io.Copy(dst, io.NewSectionReader(src, parts[i].Start*512, parts[i].Size*512)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	check := func(want string, name string, args ...string) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%s %s: %v, want %q in:\n%s", name, strings.Join(args, " "), err, want, out)
		}
	}
	boot, root, perm := extract(0), extract(1), extract(3)
	check("files", "fsck.vfat", "-n", boot)
	for _, f := range []string{"::/config.txt", "::/start4.elf", "::/slot2/cmdline.txt", "::/slot2/vmlinuz", "::/slot2/bcm2711-rpi-4-b.dtb", "::/slot2/bcm2712-rpi-5-b.dtb", "::/slot2/overlays/README", "::/slot2/overlays/disable-bt.dtbo"} {
		check("", "mdir", "-i", boot, f)
	}
	check("os_prefix=slot2/", "mtype", "-i", boot, "::/config.txt")
	cmdline, _ := exec.Command("mtype", "-i", boot, "::/slot2/cmdline.txt").Output()
	partuuid := strings.TrimPrefix(table.PartitionTable.ID, "0x")
	if !strings.Contains(string(cmdline), "root=PARTUUID="+partuuid+"-02 init=/gokrazy/init") {
		t.Errorf("cmdline.txt %q, disk %s", cmdline, partuuid)
	}
	for _, f := range []string{"gokrazy/init", "gokrazy/dhcp", "gokrazy/ntp", "user/appliance", "etc/ssl/ca-bundle.pem", "etc/resolv.conf -> /tmp/resolv.conf", "etc/appliance/appliance.toml", "lib/modules/", "var -> /perm/var",
		"boot/vmlinuz", "boot/bcm2711-rpi-4-b.dtb", "boot/overlays/README"} {
		check("squashfs-root/"+f, "unsquashfs", "-lls", root)
	}
	check("perm: ", "e2fsck", "-fn", perm) // exit status 0: no errors
	check("hello from the board", "debugfs", "-R", "cat /appliance/site/index.html", perm)
	check(`root = "/perm/appliance/site"`, "debugfs", "-R", "cat /appliance/appliance.toml", perm)
	check("Apache License", "debugfs", "-R", "cat /appliance/LICENSE", perm)
	check("pi-test", "unsquashfs", "-cat", root, "etc/hostname")

	// Boot it: the arm64 kernel for qemu, the image as a virtio disk
	// (not modified: snapshot), port 80 forwarded.
	b := bootPi(t, img, "snapshot=on", "", false)
	b.waitConsole(t, "now listening on /run/gokrazy-http.sock", 3*time.Minute)
	b.waitSite(t, "hello from the board")
	// The appliance's log: on the serial console, through the kernel
	// log, and on the admin listener, reached from off the board.
	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/log", b.adminPort))
	if err != nil {
		t.Fatalf("admin /log: %v\n%s", err, b.consoleLog())
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "level=INFO msg=serving") {
		t.Fatalf("admin /log: %d %q", res.StatusCode, body)
	}
	// The "serving" line was written before the first answer; the
	// kernel prints it at once, qemu passes it on as it comes.
	b.waitConsole(t, "appliance: time=", 2*time.Minute)
	b.waitConsole(t, "msg=serving", 2*time.Minute)
	for _, line := range strings.Split(b.consoleLog(), "\n") {
		if strings.Contains(line, "appliance: ") {
			t.Logf("console: %s", line)
		}
	}
	t.Logf("admin /log:\n%s", body)
}

// hostAppliance builds the appliance for this machine (the laptop's
// client: deploy, update, hash-password) into dir, and returns it with
// a function that hashes a secret as hash-password does.
func hostAppliance(t *testing.T, dir string) (string, func(secret string) string) {
	t.Helper()
	app := filepath.Join(dir, "appliance")
	if out, err := exec.Command("go", "build", "-o", app, "../cmd/appliance").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return app, func(secret string) string {
		c := exec.Command(app, "hash-password")
		c.Stdin = strings.NewReader(secret + "\n")
		out, err := c.Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
}

// piTools skips the test without the tools that build and boot an image.
func piTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and boots a Raspberry Pi image under qemu (minutes): not with -short")
	}
	for _, tool := range []string{"mkfs.vfat", "mcopy", "mtype", "mksquashfs", "mkfs.ext4", "sfdisk", "fsck.vfat", "unsquashfs", "e2fsck", "debugfs", "qemu-system-aarch64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages dosfstools, mtools, squashfs-tools, e2fsprogs, fdisk, qemu-system-arm)", tool)
		}
	}
}

// buildPi builds an image into out with the builder's flags args, and
// returns its path.
func buildPi(t *testing.T, out string, args ...string) string {
	t.Helper()
	build := exec.Command("go", append([]string{"run", "./packaging/cmd/build", "pi", "-out", out}, args...)...)
	build.Dir = ".."
	b, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	return strings.TrimSpace(string(b))
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// piBoard is an image booted under qemu-system-aarch64, ports 80, 443
// and 8081 forwarded. qemu has no Raspberry Pi firmware: the board plays
// it. At each start it reads config.txt from the image's boot partition
// (tryboot.txt instead, once, after a reboot with the tryboot flag:
// the kernel says "Restarting system with command '0 tryboot'"), takes
// its os_prefix (ignored, as the firmware does, when the prefix has no
// vmlinuz), and passes the prefix's cmdline.txt to the kernel (console
// on the serial port) and, with slotKernel, boots the prefix's vmlinuz
// (an image built with qemu's kernel); else qemu's kernel. With
// -no-reboot, a guest reboot ends qemu and the board starts it again (a
// writable image: the firmware emulation follows an update's slots).
type piBoard struct {
	img, drive, extra string
	kernel            string // qemu's, for an image with the Raspberry Pi's
	slotKernel        bool
	port, adminPort   int
	httpsPort         int

	mu      sync.Mutex
	log     strings.Builder
	boots   int
	tryboot bool // the last run ended in a reboot with the tryboot flag
	stopped bool
	qemu    *exec.Cmd
}

// bootPi boots img; drive adds options to qemu's -drive (snapshot=on
// leaves the image as it is), extra to the kernel command line;
// slotKernel boots the kernel of the slot the firmware would.
func bootPi(t *testing.T, img, drive, extra string, slotKernel bool) *piBoard {
	mod, err := exec.Command("go", "mod", "download", "-json", kernelQEMU).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", kernelQEMU, err)
	}
	var m struct{ Dir string }
	json.Unmarshal(mod, &m)
	b := &piBoard{img: img, drive: drive, extra: extra, kernel: filepath.Join(m.Dir, "vmlinuz"), slotKernel: slotKernel, port: freePort(t), adminPort: freePort(t), httpsPort: freePort(t)}
	started := make(chan error, 1)
	go b.run(t.TempDir(), started)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		b.stopped = true
		q := b.qemu
		b.mu.Unlock()
		q.Process.Kill()
	})
	return b
}

// bootFile reads a file of the image's boot partition.
func (b *piBoard) bootFile(name string) (string, error) {
	out, err := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", b.img, 8192*512), "::/"+name).Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v", name, err)
	}
	return string(out), nil
}

var osPrefixRe = regexp.MustCompile(`(?m)^os_prefix=(\S*)`)

// firmware does what the Raspberry Pi firmware does before the kernel
// runs: it returns the kernel command line and, with slotKernel, the
// kernel (copied to dir), and says which it took.
func (b *piBoard) firmware(dir string, tryboot bool) (cmdline, kernel, said string, err error) {
	name := "config.txt"
	if tryboot {
		if _, err := b.bootFile("tryboot.txt"); err == nil {
			name = "tryboot.txt"
		}
	}
	config, err := b.bootFile(name)
	if err != nil {
		return "", "", "", err
	}
	prefix := ""
	if m := osPrefixRe.FindAllStringSubmatch(config, -1); m != nil {
		prefix = m[len(m)-1][1]
	}
	if _, err := b.bootFile(prefix + "vmlinuz"); err != nil {
		prefix = "" // not viable: ignored
	}
	if cmdline, err = b.bootFile(prefix + "cmdline.txt"); err != nil {
		return "", "", "", err
	}
	cmdline = strings.Replace(strings.TrimSpace(strings.SplitN(cmdline, "\n", 2)[0]), "console=tty1", "console=ttyAMA0", 1) + " " + b.extra
	kernel, said = b.kernel, fmt.Sprintf("%s, os_prefix=%s, qemu's kernel", name, prefix)
	if b.slotKernel {
		kernel = filepath.Join(dir, fmt.Sprintf("vmlinuz-%d", b.boots))
		if out, err := exec.Command("mcopy", "-n", "-i", fmt.Sprintf("%s@@%d", b.img, 8192*512), "::/"+prefix+"vmlinuz", kernel).CombinedOutput(); err != nil {
			return "", "", "", fmt.Errorf("%svmlinuz: %v %s", prefix, err, out)
		}
		k, _ := os.ReadFile(kernel)
		said = fmt.Sprintf("%s, os_prefix=%s, kernel sha256 %s", name, prefix, sha256hex(k))
	}
	return cmdline, kernel, said, nil
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// run starts qemu, and again each time it ends, until stopped.
func (b *piBoard) run(dir string, started chan<- error) {
	for {
		b.mu.Lock()
		tryboot := b.tryboot
		b.boots++
		b.mu.Unlock()
		cmdline, kernel, said, err := b.firmware(dir, tryboot)
		if err != nil {
			b.logf("firmware: %v: the board does not boot", err)
			if started != nil {
				started <- err
			}
			return
		}
		drive := "file=" + b.img + ",format=raw,if=virtio"
		if b.drive != "" {
			drive += "," + b.drive
		}
		q := exec.Command("qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-m", "512", "-smp", "2",
			"-nographic", "-no-reboot", "-kernel", kernel, "-append", cmdline, "-drive", drive,
			"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:80,hostfwd=tcp:127.0.0.1:%d-:8081,hostfwd=tcp:127.0.0.1:%d-:443", b.port, b.adminPort, b.httpsPort), "-device", "virtio-net-pci,netdev=n0")
		console, _ := q.StdoutPipe()
		q.Stderr = q.Stdout
		b.mu.Lock()
		if b.stopped {
			b.mu.Unlock()
			return
		}
		b.qemu = q
		b.tryboot = false
		fmt.Fprintf(&b.log, "firmware: boot %d: %s: %s\n", b.boots, said, cmdline)
		err = q.Start()
		b.mu.Unlock()
		if started != nil {
			started <- err
			started = nil
		}
		if err != nil {
			return
		}
		// The reboot's argument: the kernel's last line says it, but
		// the console may stop before that line is out (once in a few
		// runs); then the appliance's own line before its tryboot
		// reboot, with no plain reboot after it, stands for it.
		kernelSaid, applianceSaid, plain := false, false, false
		sc := bufio.NewScanner(console)
		for sc.Scan() {
			line := sc.Text()
			b.logf("%s", line)
			switch {
			case strings.Contains(line, "Restarting system with command '0 tryboot'"):
				kernelSaid = true
			case strings.Contains(line, "Restarting system"):
				plain = true
			case strings.Contains(line, "rebooting to try them"):
				applianceSaid, plain = true, false
			}
		}
		q.Wait()
		b.mu.Lock()
		b.tryboot = kernelSaid || (applianceSaid && !plain)
		b.mu.Unlock()
		if !kernelSaid && b.tryboot {
			b.logf("firmware: the kernel's restart line did not reach the console: the tryboot flag taken from the appliance's line")
		}
		b.logf("firmware: qemu exited: the board rebooted")
	}
}

func (b *piBoard) logf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(&b.log, format+"\n", args...)
}

func (b *piBoard) consoleLog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.String()
}

// waitConsole waits until the console has said s, n times in all.
func (b *piBoard) waitConsole(t *testing.T, s string, timeout time.Duration, n ...int) {
	t.Helper()
	want := 1
	if len(n) > 0 {
		want = n[0]
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for strings.Count(b.consoleLog(), s) < want {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the console did not say %q (%d times) within %s:\n%s", s, want, timeout, b.consoleLog())
		}
	}
}

// waitSite polls the site until it answers 200 with want in the page
// (the appliance and DHCP start in parallel: qemu's forwarder resets
// until both are up).
func (b *piBoard) waitSite(t *testing.T, want string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for {
		res, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", b.port))
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(string(body), want) || res.Header.Get("Etag") == "" {
				t.Fatalf("%d %q", res.StatusCode, body)
			}
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no answer from the booted image: %v\n%s", err, b.consoleLog())
		}
	}
}
