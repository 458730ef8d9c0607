// Command appliance serves static sites: `appliance [serve] [-config FILE]`,
// `appliance check -config FILE`, `appliance version`.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"appliance/config"
	"appliance/rewrite"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: appliance [command] [-config FILE]

commands:
  serve     serve the configured sites (the default); without -config,
            an embedded demo site on http://localhost:8080
  check     validate a configuration and exit
  reload    validate a configuration, then tell the server named by -pid
            or by its server.pid_file to load it (SIGHUP)
  ca-cert   print the root certificate of the local CA (tls = "local"),
            creating it in server.state_dir if needed, to install in clients
  health    exit 0 if the server of this configuration answers on its
            plain-HTTP listener, or HTTPS without one (a container healthcheck)
  hash-password
            read a password from standard input and print its argon2id
            hash, for [[site.auth]] users
  version   print the version
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve", "check", "reload", "ca-cert", "health":
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "hash-password":
		return hashPassword(stdin, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "appliance: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	fl := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, usage) }
	path := fl.String("config", "", "configuration `file` (TOML)")
	pid := fl.Int("pid", 0, "reload: the server's process `ID` (default: from server.pid_file)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "appliance: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	if (cmd == "check" || cmd == "reload") && *path == "" {
		fmt.Fprintf(stderr, "appliance %s: -config FILE is required\n", cmd)
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cmd == "check" {
		fmt.Fprintf(stdout, "%s: ok (%d sites)\n", *path, len(cfg.Sites))
		return 0
	}
	if cmd == "reload" {
		return signalServer(cfg, *pid, stdout, stderr)
	}
	if cmd == "health" {
		listen, secure := cfg.Server.HTTP, false
		if listen == "" {
			listen, secure = cfg.Server.HTTPS, true
		}
		addr, err := net.ResolveTCPAddr("tcp", listen)
		if err != nil {
			fmt.Fprintln(stderr, "appliance health:", err)
			return 1
		}
		if err := probe(addr, secure, 5*time.Second); err != nil {
			fmt.Fprintln(stderr, "appliance health:", err)
			return 1
		}
		fmt.Fprintln(stdout, "ok")
		return 0
	}
	if cmd == "ca-cert" {
		ca, err := openLocalCA(cfg)
		if err != nil {
			fmt.Fprintln(stderr, "appliance ca-cert:", err)
			return 1
		}
		stdout.Write(ca.RootPEM())
		return 0
	}

	log := newLogger(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	srv, err := newServer(cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if err := srv.run(ctx, hup, usr1, func() (*config.Config, error) { return loadConfig(*path) }); err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	return 0
}

// signalServer sends SIGHUP to the server with the given PID (systemd's
// $MAINPID), or else to the one whose PID is in the configuration's
// pid_file.
func signalServer(cfg *config.Config, pid int, stdout, stderr io.Writer) int {
	if pid != 0 {
		if pid <= 1 {
			fmt.Fprintf(stderr, "appliance reload: -pid %d is not a server's process ID\n", pid)
			return 1
		}
		return hup(pid, stdout, stderr)
	}
	pf := cfg.Server.PIDFile
	if pf == "" {
		fmt.Fprintln(stderr, "appliance reload: the configuration sets no server.pid_file (under systemd: systemctl reload appliance)")
		return 1
	}
	b, err := os.ReadFile(pf)
	if err != nil {
		fmt.Fprintln(stderr, "appliance reload:", err)
		return 1
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		fmt.Fprintf(stderr, "appliance reload: %s does not hold a process ID\n", pf)
		return 1
	}
	return hup(pid, stdout, stderr)
}

func hup(pid int, stdout, stderr io.Writer) int {
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		fmt.Fprintf(stderr, "appliance reload: process %d: %v\n", pid, err)
		return 1
	}
	fmt.Fprintf(stdout, "configuration valid; asked process %d to reload it\n", pid)
	return 0
}

// hashPassword reads one line (the password) and prints its hash; the
// password is never echoed or logged.
func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "appliance hash-password:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "appliance hash-password: empty password (give it on standard input)")
		return 1
	}
	fmt.Fprintln(stdout, rewrite.HashPassword(pw))
	return 0
}

// loadConfig loads a file, or the embedded default for "".
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	cfg, err := config.Load(path)
	var ce config.Errors
	if err != nil && !errors.As(err, &ce) {
		return nil, fmt.Errorf("config: %w", err)
	}
	return cfg, err
}

func versionString() string {
	v := version
	if v == "" {
		v = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += "+" + s.Value[:12]
				}
			}
		}
	}
	return fmt.Sprintf("appliance %s (%s, %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
