package packaging

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testDebUnderSystemd installs the package on a booted systemd, the way
// its users get it: systemd 252 as PID 1 in a privileged podman
// container whose root is an overlay of this machine's Debian (so the
// packages it has are there, and nothing it does reaches the host), with
// its own network namespace. dpkg runs the maintainer scripts against
// the real systemctl, and the service runs with its whole sandbox
// (DynamicUser, the namespaces, the system call filter).
func testDebUnderSystemd(t *testing.T, deb string) {
	if os.Geteuid() != 0 {
		t.Skip("booting systemd in a container needs root")
	}
	for _, tool := range []string{"podman", "runc", "curl", "/lib/systemd/systemd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages podman, runc, curl, systemd); .ci/run installs them", tool)
		}
	}
	podman := newPodman(t)
	debDir := filepath.Dir(deb)
	// systemd says READY=1 when it has booted; podman passes that on to
	// the NOTIFY_SOCKET it was given.
	notify := filepath.Join(t.TempDir(), "notify")
	ready, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	run := podman("run", "-d", "--sdnotify=container", "--privileged", "--systemd=always", "--network", "none",
		// No copy of the host's /tmp and /run into the container's.
		"--tmpfs", "/tmp:rw,notmpcopyup", "--tmpfs", "/run:rw,notmpcopyup",
		"-v", debDir+":/mnt/deb:ro", "--rootfs", "/:O",
		"/lib/systemd/systemd", "--unit=multi-user.target")
	run.Env = append(run.Env, "NOTIFY_SOCKET="+notify)
	b, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("podman run systemd: %v\n%s", err, b)
	}
	id := strings.TrimSpace(string(b))
	t.Cleanup(func() {
		if b, err := podman("rm", "-f", "-t", "0", id).CombinedOutput(); err != nil {
			t.Errorf("podman rm: %v\n%s", err, b)
		}
	})
	// sh runs a script in the container; the exit status is returned,
	// and the test fails if it took over a minute.
	sh := func(script string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := podman("exec", id, "sh", "-c", script)
		cmd := exec.CommandContext(ctx, c.Path, c.Args[1:]...)
		cmd.Env = c.Env
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("%q: no answer in a minute\n%s", script, out)
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return string(out), exit.ExitCode()
		} else if err != nil {
			t.Fatalf("%q: %v", script, err)
		}
		return string(out), 0
	}
	must := func(script string) string {
		t.Helper()
		out, rc := sh(script)
		if rc != 0 {
			journal, _ := sh("journalctl --no-pager -n 40 -u 'appliance*'")
			t.Fatalf("%s: exit %d\n%s\njournal:\n%s", script, rc, out, journal)
		}
		return out
	}
	ready.SetReadDeadline(time.Now().Add(2 * time.Minute))
	for buf := make([]byte, 4096); ; {
		n, err := ready.Read(buf)
		if err != nil {
			logs, _ := podman("logs", id).CombinedOutput()
			t.Fatalf("systemd never said READY=1: %v\n%s", err, logs)
		}
		if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
			break
		}
	}
	// Booted ("degraded" counts: the host's own units may fail here).
	if out, _ := sh("systemctl is-system-running --wait"); !strings.Contains(out, "running") && !strings.Contains(out, "degraded") {
		t.Fatalf("systemd did not boot: %s", out)
	}
	// The container's root is the host's: web servers installed there
	// (the benchmark's nginx, lighttpd) boot with it and would hold the
	// ports the package's sockets want.
	must("for u in nginx lighttpd apache2 caddy; do systemctl stop $u.service 2>/dev/null; done; true")
	if out, _ := sh("ss -Hltn 'sport = :80 or sport = :443'"); strings.TrimSpace(out) != "" {
		t.Fatalf("something in the container already listens on port 80 or 443:\n%s", out)
	}
	// A minimal Debian has no procps, so no /bin/kill.
	must("rm -f /usr/bin/kill /bin/kill")
	must("dpkg -i /mnt/deb/" + filepath.Base(deb))

	state := func(unit string) string {
		out, _ := sh("systemctl is-enabled " + unit + "; systemctl is-active " + unit)
		return strings.Join(strings.Fields(out), " ")
	}
	if got := state("appliance.socket"); got != "enabled active" {
		t.Errorf("appliance.socket after installation: %s, want enabled active", got)
	}
	if got := state("appliance-https.socket"); got != "disabled inactive" {
		t.Errorf("appliance-https.socket with a configuration without https: %s, want disabled inactive", got)
	}
	page := must("curl -sS -m 10 http://127.0.0.1/")
	for _, want := range []string{"/etc/appliance/appliance.toml", "/usr/share/appliance/www", "Debian package",
		"systemctl enable appliance-https.socket", "systemctl stop appliance.service",
		"systemctl start appliance-https.socket appliance.service"} {
		if !strings.Contains(page, want) {
			t.Errorf("the welcome page does not say %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "no configuration file") {
		t.Error("the welcome page says no configuration file was given")
	}
	// Nothing listens on 443: refused (curl's 7), not a wait (28).
	if out, rc := sh("curl -sS -k -m 10 https://127.0.0.1/"); rc != 7 {
		t.Errorf("HTTPS without https in the configuration: curl exit %d, want 7 (refused)\n%s", rc, out)
	}
	// systemctl reload checks the configuration, then signals, without
	// /bin/kill; a broken configuration is refused and the old one stays.
	must("systemctl reload appliance")
	must("journalctl --no-pager -u appliance | grep -q msg=reloaded")
	must("cp /etc/appliance/appliance.toml /root/good.toml && echo 'nonsense = [' >> /etc/appliance/appliance.toml")
	if out, rc := sh("systemctl reload appliance"); rc == 0 {
		t.Errorf("reload of a broken configuration succeeded\n%s", out)
	}
	must("cp /root/good.toml /etc/appliance/appliance.toml && systemctl is-active appliance.service && curl -sS -m 10 -o /dev/null http://127.0.0.1/")

	// HTTPS as the README and the welcome page say: the key, then the
	// service stopped and the socket started before it (systemd refuses
	// to start a socket whose service runs, and systemctl queues one job
	// per unit, in order: "restart service socket" races).
	must(`sed -i 's/^http = ":80"$/http = ":80"\nhttps = ":443"/' /etc/appliance/appliance.toml`)
	must("systemctl enable appliance-https.socket && systemctl stop appliance.service && systemctl start appliance-https.socket appliance.service")
	if page := must("curl -sS -k -m 10 https://localhost/"); !strings.Contains(page, "appliance is running") {
		t.Errorf("over HTTPS: %s", page)
	}
	// An upgrade (here a reinstallation) turns the HTTPS socket on when
	// the configuration asks for it, and restarts the service.
	must("systemctl disable --now appliance-https.socket")
	must("dpkg -i /mnt/deb/" + filepath.Base(deb))
	if got := state("appliance-https.socket"); got != "enabled active" {
		t.Errorf("appliance-https.socket after an upgrade with https configured: %s, want enabled active", got)
	}
	must("curl -sS -k -m 10 -o /dev/null https://localhost/")
	// Upgrading again, with the HTTPS socket already active, restarts
	// the service and leaves the socket as it is.
	pid := strings.TrimSpace(must("systemctl show -P MainPID appliance.service"))
	must("dpkg -i /mnt/deb/" + filepath.Base(deb))
	if got := state("appliance-https.socket"); got != "enabled active" {
		t.Errorf("appliance-https.socket after a second upgrade: %s, want enabled active", got)
	}
	if now := strings.TrimSpace(must("systemctl show -P MainPID appliance.service")); now == pid || now == "0" {
		t.Errorf("the service was not restarted by the upgrade: MainPID %s, before %s", now, pid)
	}
	must("curl -sS -k -m 10 -o /dev/null https://localhost/ && curl -sS -m 10 -o /dev/null http://127.0.0.1/")

	// Deploying content as the README's "systemd host" says: a site
	// with a deploy_token and no root, a reload, then appliance deploy
	// (here from the machine itself, so plain HTTP to loopback); the
	// releases live in the service's state directory.
	must(`hash=$(echo s3cret-token | appliance hash-password) && printf '\n[[site]]\nhosts = ["127.0.0.1"]\ntls = "off"\ndeploy_token = "%s"\n' "$hash" >> /etc/appliance/appliance.toml`)
	must("systemctl reload appliance")
	must("mkdir -p /root/site && echo 'deployed under systemd' > /root/site/index.html")
	if out := must("APPLIANCE_DEPLOY_TOKEN=s3cret-token appliance deploy /root/site http://127.0.0.1/"); !strings.Contains(out, "is live on http://127.0.0.1/") {
		t.Errorf("deploy: %s", out)
	}
	if page := must("curl -sS -m 10 http://127.0.0.1/"); page != "deployed under systemd\n" {
		t.Errorf("after the deploy: %q", page)
	}
	must("test -L /var/lib/appliance/sites/127.0.0.1/current")

	// Purge: units off, ports closed, state gone.
	must("dpkg --purge appliance")
	if out, rc := sh("curl -sS -m 10 http://127.0.0.1/"); rc != 7 {
		t.Errorf("port 80 after purge: curl exit %d, want 7 (refused)\n%s", rc, out)
	}
	if out, rc := sh("test -e /var/lib/private/appliance || test -e /etc/appliance"); rc == 0 {
		t.Errorf("state or configuration left after purge\n%s", out)
	}
}
