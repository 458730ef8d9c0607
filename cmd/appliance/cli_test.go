package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runBinary runs the appliance with args and returns its stdout, stderr
// and exit status.
func runBinary(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestHelpAndVersion: help asked for goes to stdout with status 0, a
// usage error to stderr with 2; -version and --version are version.
func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, errOut, code := runBinary(t, "", args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "usage: appliance") || !strings.Contains(out, "-listen ADDR") {
			t.Errorf("%v: status %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	// One command's help: its synopsis, paragraph, flags and
	// environment.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "-h"}, []string{"usage: appliance serve [-config FILE | DIR [-listen ADDR]]", "SIGHUP", "  -listen ADDR\n"}},
		{[]string{"check", "--help"}, []string{"usage: appliance check -config FILE", "file:line: message", "-config FILE is required"}},
		{[]string{"help", "deploy"}, []string{"usage: appliance deploy", "  -cert FILE\n", "  -vcs\n", "APPLIANCE_DEPLOY_KEY"}},
		{[]string{"deploy", "-h"}, []string{"usage: appliance deploy", "APPLIANCE_DEPLOY_TOKEN"}},
		{[]string{"update", "--help"}, []string{"usage: appliance update IMAGE URL", "APPLIANCE_ADMIN_TOKEN\n"}},
	} {
		out, errOut, code := runBinary(t, "", c.args...)
		for _, w := range c.want {
			if code != 0 || errOut != "" || !strings.Contains(out, w) {
				t.Errorf("%v: status %d, stderr %q, want %q in\n%s", c.args, code, errOut, w, out)
			}
		}
	}
	for _, args := range [][]string{{"--bogus"}, {"serve", "-bogus"}, {"frobnicate"}, {"check", "extra"}, {"serve", "a", "b"}} {
		out, errOut, code := runBinary(t, "", args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "usage: appliance") {
			t.Errorf("%v: status %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	// A command that takes no argument names the first one it got.
	for _, cmd := range []string{"check", "version", "man", "hash-password"} {
		if _, errOut, code := runBinary(t, "", cmd, "first", "second"); code != 2 || !strings.Contains(errOut, cmd+`: unexpected argument "first"`) {
			t.Errorf("%s first second: status %d, stderr %q", cmd, code, errOut)
		}
	}
	want, _, _ := runBinary(t, "", "version")
	for _, flag := range []string{"-version", "--version"} {
		if out, _, code := runBinary(t, "", flag); code != 0 || out != want || !strings.HasPrefix(out, "appliance ") {
			t.Errorf("%s: %d %q, want %q", flag, code, out, want)
		}
	}
}

// TestServeFolder: appliance serve DIR serves that folder, flags before
// or after it; with -config it is refused.
func TestServeFolder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "site/index.html", "folder index")
	writeFile(t, dir, "site/a.txt", "text")
	for _, args := range [][]string{
		{"serve", filepath.Join(dir, "site"), "-listen", "127.0.0.1:0"},
		{"serve", "-listen", "127.0.0.1:0", filepath.Join(dir, "site")},
	} {
		p := start(t, args...)
		for path, want := range map[string]string{"/": "folder index", "/a.txt": "text"} {
			res := raw(t, p.addr, "GET "+path+" HTTP/1.1\r\nHost: anything.test\r\nConnection: close\r\n\r\n", 1)[0]
			if b := readBody(res); res.StatusCode != 200 || b != want || res.Header.Get("Last-Modified") == "" {
				t.Errorf("%v %s: %d %q", args, path, res.StatusCode, b)
			}
		}
	}
	cfg := writeFile(t, dir, "appliance.toml", "[[site]]\nroot = \"site\"\n")
	if _, errOut, code := runBinary(t, "", "serve", filepath.Join(dir, "site"), "-config", cfg); code != 2 || !strings.Contains(errOut, "not both") {
		t.Errorf("DIR with -config: %d %q", code, errOut)
	}
	if _, errOut, code := runBinary(t, "", "serve", "-config", cfg, "-listen", ":1"); code != 2 || !strings.Contains(errOut, "set server.http") {
		t.Errorf("-listen with -config: %d %q", code, errOut)
	}
	if _, errOut, code := runBinary(t, "", "serve", filepath.Join(dir, "nope")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing folder: %d %q", code, errOut)
	}
}

// TestManPage: the manual page names every command and flag of the
// usage, and groff reads it without a warning.
func TestManPage(t *testing.T) {
	man, _, code := runBinary(t, "", "man")
	if code != 0 || !strings.HasPrefix(man, ".TH APPLIANCE 1") || !strings.Contains(man, "appliance \\- ") {
		t.Fatalf("man: %d %.200q", code, man)
	}
	for _, c := range commands {
		if !c.hidden && !strings.Contains(man, ".B "+strings.ReplaceAll(c.name, "-", `\-`)+"\n") {
			t.Errorf("the manual lacks the command %s", c.name)
		}
	}
	// Every flag of every command and every environment variable: the
	// manual's OPTIONS are listed by hand.
	flags := []string{`\-config`, `\-listen`}
	for _, c := range commands {
		for _, o := range c.options {
			macro := ".BI" // a flag with an argument
			if o.arg == "" {
				macro = ".B"
			}
			flags = append(flags, macro+` \-`+strings.ReplaceAll(o.name, "-", `\-`))
		}
	}
	for _, e := range envVars {
		flags = append(flags, ".B "+e.name+"\n")
	}
	for _, f := range flags {
		if !strings.Contains(man, f) {
			t.Errorf("the manual lacks %s", f)
		}
	}
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("groff not installed")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(man)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}

// openPTY returns a pseudo-terminal's controller and terminal ends.
func openPTY(t *testing.T) (ctl, term *os.File) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("no pseudo-terminals:", err)
	}
	t.Cleanup(func() { ctl.Close() })
	if err := unix.IoctlSetPointerInt(int(ctl.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ctl.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	term, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close() })
	return ctl, term
}

// TestHashPasswordTerminal: on a terminal the password is asked for on
// stderr, read without echo and confirmed; the terminal is restored.
func TestHashPasswordTerminal(t *testing.T) {
	for _, tc := range []struct {
		name, first, second string
		ok                  bool
	}{{"confirmed", "s3cret-pw", "s3cret-pw", true}, {"mismatch", "s3cret-pw", "other-pw", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctl, term := openPTY(t)
			cmd := exec.Command(binary, "hash-password")
			cmd.Stdin = term
			var out bytes.Buffer
			cmd.Stdout = &out
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			// What the terminal shows (echo), read as it comes.
			shown := make(chan string, 1)
			go func() {
				var b bytes.Buffer
				buf := make([]byte, 256)
				for {
					n, err := ctl.Read(buf)
					b.Write(buf[:n])
					if err != nil || strings.Contains(b.String(), "MARK") {
						shown <- b.String()
						return
					}
				}
			}()
			er := bufio.NewReader(stderr)
			waitPrompt := func(prompt string) {
				t.Helper()
				var seen []byte
				for !bytes.HasSuffix(seen, []byte(prompt)) {
					c, err := er.ReadByte()
					if err != nil {
						t.Fatalf("no prompt %q on stderr, got %q", prompt, seen)
					}
					seen = append(seen, c)
				}
			}
			// The prompt shows once echo is off: type after it.
			waitPrompt("Password: ")
			ctl.WriteString(tc.first + "\n")
			waitPrompt("confirm: ")
			ctl.WriteString(tc.second + "\n")
			rest, _ := readAll(er)
			err := cmd.Wait()
			if tc.ok && (err != nil || !strings.HasPrefix(out.String(), "$argon2id$")) {
				t.Fatalf("hash-password: %v %q %q", err, out.String(), rest)
			}
			if !tc.ok && (err == nil || out.Len() > 0 || !strings.Contains(rest, "do not match")) {
				t.Fatalf("mismatch accepted: %v %q %q", err, out.String(), rest)
			}
			// Echo is back on: what is typed now shows, and nothing before.
			ctl.WriteString("MARK\n")
			select {
			case s := <-shown:
				if strings.Contains(s, "s3cret") || strings.Contains(s, "other-pw") || !strings.Contains(s, "MARK") {
					t.Fatalf("the terminal showed %q", s)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the terminal echoes nothing after hash-password: not restored")
			}
		})
	}
}

func readAll(r *bufio.Reader) (string, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.String(), err
}

// TestStateDirErrors: check refuses a state_dir the server could not
// use for its local CA, and serve names server.state_dir at its line.
func TestStateDirErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "root/index.html", "x")
	blocker := writeFile(t, dir, "blocker", "a file, so no directory can be made under it")
	cfg := writeFile(t, dir, "appliance.toml", "[server]\nhttps = \"127.0.0.1:0\"\nstate_dir = \""+filepath.Join(blocker, "state")+"\"\n[[site]]\nhosts = [\"pi.lan\"]\nroot = \"root\"\ntls = \"local\"\n")
	_, errOut, code := runBinary(t, "", "check", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, cfg+`:3: server.state_dir "`+filepath.Join(blocker, "state")+`": cannot keep local-ca/ there`) {
		t.Errorf("check: %d %q", code, errOut)
	}
	cmd := exec.Command(binary, "serve", "-config", cfg)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), cfg+`:3: server.state_dir`) {
		t.Errorf("serve: %v %s", err, out)
	}
	// Without TLS sites the state directory does not matter.
	plain := writeFile(t, dir, "plain.toml", "[server]\nstate_dir = \""+filepath.Join(blocker, "state")+"\"\n[[site]]\nroot = \"root\"\n")
	if out, errOut, code := runBinary(t, "", "check", "-config", plain); code != 0 {
		t.Errorf("check without TLS sites: %d %q %q", code, out, errOut)
	}
}

// TestCACert: ca-cert needs -config, and as root it does not create a
// CA that the service's own user could not read.
func TestCACert(t *testing.T) {
	if _, errOut, code := runBinary(t, "", "ca-cert"); code != 2 || !strings.Contains(errOut, "-config FILE is required") {
		t.Errorf("without -config: %d %q", code, errOut)
	}
	dir := t.TempDir()
	writeFile(t, dir, "root/index.html", "x")
	cfg := writeFile(t, dir, "appliance.toml", "[server]\nhttps = \"127.0.0.1:0\"\nstate_dir = \"state\"\n[[site]]\nhosts = [\"pi.lan\"]\nroot = \"root\"\n")
	out, errOut, code := runBinary(t, "", "ca-cert", "-config", cfg)
	if os.Geteuid() != 0 {
		if code != 0 || !strings.Contains(out, "BEGIN CERTIFICATE") {
			t.Errorf("as a user: %d %q", code, errOut)
		}
		return
	}
	if code != 1 || !strings.Contains(errOut, "start the service first") {
		t.Errorf("as root before the CA exists: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "local-ca")); err == nil {
		t.Error("ca-cert as root created the CA")
	}
	// Once the server made it, root may read it.
	p := start(t, "-config", cfg)
	p.waitLogSeen(t, "msg=serving")
	if out, errOut, code := runBinary(t, "", "ca-cert", "-config", cfg); code != 0 || !strings.Contains(out, "BEGIN CERTIFICATE") {
		t.Errorf("after the server made the CA: %d %q", code, errOut)
	}
}

// TestCheckCatchesStartFailures: what stops a start stops check first,
// with the key's place in the file, and the start's error has it too: a
// deployable site's state_dir where nothing can be made (/proc refuses
// even root, whom access(2) lets write anywhere), and a log_file whose
// directory cannot be made.
func TestCheckCatchesStartFailures(t *testing.T) {
	dir := t.TempDir()
	hash := rewriteHash(t, "tok")
	for _, tc := range []struct{ name, conf, check, serve string }{
		{"deploy state_dir", "[server]\nhttp = \"127.0.0.1:0\"\nstate_dir = \"/proc/nope\"\n[[site]]\ndeploy_token = \"" + hash + "\"\n",
			`:3: server.state_dir "/proc/nope": cannot keep sites/ there`, `:3: server.state_dir \"/proc/nope\": cannot keep sites/ there`},
		{"log_file", "[server]\nhttp = \"127.0.0.1:0\"\nlog_file = \"/proc/nope/x.log\"\n[[site]]\nroot = \"" + dir + "\"\n",
			`:3: server.log_file "/proc/nope/x.log": cannot be created`, `:3: log_file: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, dir, "c.toml", tc.conf)
			if _, errOut, code := runBinary(t, "", "check", "-config", cfg); code != 1 || !strings.Contains(errOut, cfg+tc.check) {
				t.Errorf("check: %d %q, want %q", code, errOut, tc.check)
			}
			if out, err := exec.Command(binary, "serve", "-config", cfg).CombinedOutput(); err == nil || !strings.Contains(string(out), cfg+tc.serve) {
				t.Errorf("serve: %v %s, want %q", err, out, tc.serve)
			}
		})
	}
}

// TestREADMECommands: the README's table of commands has a row for
// every command the help lists, and each command's rows name all its
// flags.
func TestREADMECommands(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(data), "\n## Commands\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, c := range commands {
		if c.hidden {
			continue
		}
		var rows []string
		for _, l := range strings.Split(section, "\n") {
			if strings.HasPrefix(l, "| `appliance "+c.name+" ") || strings.HasPrefix(l, "| `appliance "+c.name+"`") ||
				c.name == "serve" && strings.HasPrefix(l, "| `appliance [serve]") {
				rows = append(rows, l)
			}
		}
		if len(rows) == 0 {
			t.Errorf("the README's commands lack %s", c.name)
			continue
		}
		for _, o := range c.options {
			if !strings.Contains(strings.Join(rows, "\n"), "-"+o.name) {
				t.Errorf("the README's %s row lacks -%s", c.name, o.name)
			}
		}
	}
}
