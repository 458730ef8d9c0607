// Command appliance serves static sites: `appliance [serve] [-config FILE]`,
// `appliance serve DIR`, `appliance check -config FILE`, `appliance version`;
// the commands are defined in cli.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"appliance/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-version" || a == "--version":
			name, args = "version", args[1:]
		case a != "" && a[0] != '-':
			name, args = a, args[1:]
		}
	}
	cmd := findCommand(name)
	if cmd == nil {
		return usageError(stderr, "unknown command %q", name)
	}
	vals := map[string]*string{}
	fl := cmd.flags(vals)
	fl.SetOutput(stderr)
	fl.Usage = func() {}
	// Flags may come before or after the folder: serve ./site -listen :8000.
	var pos []string
	for {
		if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage()) // asked for: not an error
			return 0
		} else if err != nil {
			fmt.Fprintf(stderr, "\n%s", usage()) // the flag package said what
			return 2
		}
		if fl.NArg() == 0 {
			break
		}
		pos, args = append(pos, fl.Arg(0)), fl.Args()[1:]
	}
	path, listen := "", ""
	if vals["config"] != nil {
		path = *vals["config"]
	}
	if vals["listen"] != nil {
		listen = *vals["listen"]
	}
	switch {
	case name == "help" || name == "man" || name == "version" || name == "hash-password":
		if len(pos) > 0 && name != "help" {
			return usageError(stderr, "%s: unexpected argument %q", name, pos[0])
		}
	case name == "serve" && len(pos) > 1, name != "serve" && len(pos) > 0:
		return usageError(stderr, "%s: unexpected argument %q", name, pos[len(pos)-1])
	case name == "serve" && len(pos) == 1 && path != "":
		return usageError(stderr, "serve: give a folder to serve or -config FILE, not both (in a configuration, the folder is a [[site]] root)")
	case name == "serve" && listen != "" && path != "":
		return usageError(stderr, "serve: -listen is for a folder or the demo site; with -config, set server.http in %s", path)
	case cmd.needsCfg && path == "":
		fmt.Fprintf(stderr, "appliance %s: -config FILE is required\n", name)
		return 2
	}
	switch name {
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help":
		fmt.Fprint(stdout, usage())
		return 0
	case "man":
		fmt.Fprint(stdout, manPage())
		return 0
	case "hash-password":
		return hashPassword(stdin, stdout, stderr)
	}
	dir := ""
	if len(pos) == 1 {
		dir = pos[0]
	}
	load := func() (*config.Config, error) {
		if path == "" {
			return config.Command(dir, listen)
		}
		return loadConfig(path)
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	switch name {
	case "check":
		if err := cfg.CheckStateDir(); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok (%d sites)\n", path, len(cfg.Sites))
		return 0
	case "reload":
		pid := 0
		if v := vals["pid"]; v != nil && *v != "" {
			n, err := strconv.Atoi(*v)
			if err != nil {
				return usageError(stderr, "reload: -pid %q is not a process ID", *v)
			}
			pid = n
		}
		return signalServer(cfg, pid, stdout, stderr)
	case "health":
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
	case "ca-cert":
		return caCert(cfg, stdout, stderr)
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
	if err := srv.run(ctx, hup, usr1, load); err != nil {
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

// loadConfig loads a configuration file.
func loadConfig(path string) (*config.Config, error) {
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

// caCert prints the local CA's root certificate. Run as root before the
// service made the CA, it refuses: the files it would create would be
// root's, and the service, with a user of its own, could not read them.
func caCert(cfg *config.Config, stdout, stderr io.Writer) int {
	dir := filepath.Join(cfg.Server.StateDir, "local-ca")
	if _, err := os.Stat(filepath.Join(dir, "root.crt")); errors.Is(err, fs.ErrNotExist) && os.Geteuid() == 0 {
		fmt.Fprintf(stderr, "appliance ca-cert: there is no local CA in %s yet, and one created by root would be unreadable for the service: "+
			"start the service first (it creates the CA as its own user, on its first tls = \"local\" site), then run this again\n", dir)
		return 1
	}
	ca, err := openLocalCA(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "appliance ca-cert:", err)
		return 1
	}
	stdout.Write(ca.RootPEM())
	return 0
}
