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

	"appliance/accesslog"
	"appliance/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status: 0, 1 when
// the command failed, 2 for a usage error.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	inv, code := parseArgs(args, stdout, stderr)
	if inv == nil {
		return code
	}
	if code, done := inv.runInfo(stdin, stdout, stderr); done {
		return code
	}
	load := inv.loader()
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if code, done := inv.runWithConfig(cfg, stdout, stderr); done {
		return code
	}
	return serveConfig(cfg, load, stderr)
}

// invocation is a parsed command line: the command, its flags' values
// and its positional arguments.
type invocation struct {
	name   string
	cmd    *command
	vals   map[string]*string // the flags' values by name
	pos    []string           // the positional arguments
	path   string             // -config
	listen string             // -listen
}

// parseArgs parses and checks the command line. On a usage error, or a
// request for help, it has said so and returns a nil invocation and the
// exit status.
func parseArgs(args []string, stdout, stderr io.Writer) (*invocation, int) {
	name, named := "serve", false
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-version" || a == "--version":
			name, args = "version", args[1:]
		case a != "" && a[0] != '-':
			name, args, named = a, args[1:], true
		}
	}
	cmd := findCommand(name)
	if cmd == nil {
		return nil, usageError(stderr, "unknown command %q", name)
	}
	inv := &invocation{name: name, cmd: cmd, vals: map[string]*string{}}
	fl := cmd.flags(inv.vals)
	fl.SetOutput(stderr)
	fl.Usage = func() {}
	// Flags may come before or after the folder: serve ./site -listen :8000.
	for {
		if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
			if named { // asked for: not an error
				fmt.Fprint(stdout, commandUsage(cmd))
			} else {
				fmt.Fprint(stdout, usage())
			}
			return nil, 0
		} else if err != nil {
			fmt.Fprintf(stderr, "\n%s", usage()) // the flag package said what
			return nil, 2
		}
		if fl.NArg() == 0 {
			break
		}
		inv.pos, args = append(inv.pos, fl.Arg(0)), fl.Args()[1:]
	}
	if inv.vals["config"] != nil {
		inv.path = *inv.vals["config"]
	}
	if inv.vals["listen"] != nil {
		inv.listen = *inv.vals["listen"]
	}
	if code, ok := inv.check(stderr); !ok {
		return nil, code
	}
	return inv, 0
}

// check refuses the arguments the command does not take together.
func (inv *invocation) check(stderr io.Writer) (int, bool) {
	checkArgs := argChecks[inv.name]
	if checkArgs == nil {
		checkArgs = noArgs
	}
	if code, ok := checkArgs(inv, stderr); !ok {
		return code, false
	}
	if inv.cmd.needsCfg && inv.path == "" {
		fmt.Fprintf(stderr, "appliance %s: -config FILE is required\n", inv.name)
		return 2, false
	}
	return 0, true
}

// An argCheck refuses the positional arguments of a command, or the
// flags it does not take with them: it has said so and returns the exit
// status and false.
type argCheck func(inv *invocation, stderr io.Writer) (int, bool)

// argChecks holds each command's argCheck; a command not listed takes
// no positional argument (noArgs).
var argChecks = map[string]argCheck{
	"help":        anyArgs,
	"deploy":      deployArgs,
	"releases":    siteURLArg,
	"rollback":    siteURLArg,
	"update":      updateArgs,
	"maintenance": maintenanceArg,
	"serve":       serveArgs,
}

// anyArgs takes any positional arguments (help ignores them).
func anyArgs(*invocation, io.Writer) (int, bool) { return 0, true }

// noArgs refuses any positional argument, naming the first.
func noArgs(inv *invocation, stderr io.Writer) (int, bool) {
	if len(inv.pos) > 0 {
		return usageError(stderr, "%s: unexpected argument %q", inv.name, inv.pos[0]), false
	}
	return 0, true
}

// deployArgs wants a folder and the site's URL.
func deployArgs(inv *invocation, stderr io.Writer) (int, bool) {
	if len(inv.pos) != 2 {
		return usageError(stderr, "deploy: want a folder and the site's URL: deploy DIR URL"), false
	}
	return 0, true
}

// siteURLArg wants the site's URL (releases, rollback).
func siteURLArg(inv *invocation, stderr io.Writer) (int, bool) {
	if len(inv.pos) != 1 {
		return usageError(stderr, "%s: want the site's URL: %s URL", inv.name, inv.name), false
	}
	return 0, true
}

// maintenanceArg wants on or off.
func maintenanceArg(inv *invocation, stderr io.Writer) (int, bool) {
	if len(inv.pos) != 1 {
		return usageError(stderr, "maintenance: want on or off"), false
	}
	return 0, true
}

// serveArgs takes at most a folder, and -listen only without -config.
func serveArgs(inv *invocation, stderr io.Writer) (int, bool) {
	switch pos, path := inv.pos, inv.path; {
	case len(pos) > 1:
		return usageError(stderr, "%s: unexpected argument %q", inv.name, pos[len(pos)-1]), false
	case len(pos) == 1 && path != "":
		return usageError(stderr, "serve: give a folder to serve or -config FILE, not both (in a configuration, the folder is a [[site]] root)"), false
	case inv.listen != "" && path != "":
		return usageError(stderr, "serve: -listen is for a folder or the demo site; with -config, set server.http in %s", path), false
	}
	return 0, true
}

// runInfo runs the commands that need no configuration; done is false
// for the others.
func (inv *invocation) runInfo(stdin io.Reader, stdout, stderr io.Writer) (code int, done bool) {
	switch inv.name {
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0, true
	case "help":
		if len(inv.pos) > 0 && findCommand(inv.pos[0]) != nil && !findCommand(inv.pos[0]).hidden {
			fmt.Fprint(stdout, commandUsage(findCommand(inv.pos[0])))
		} else {
			fmt.Fprint(stdout, usage())
		}
		return 0, true
	case "man":
		fmt.Fprint(stdout, manPage())
		return 0, true
	case "hash-password":
		return hashPassword(stdin, stdout, stderr), true
	case "deploy", "releases", "rollback":
		return deployCommand(inv, stdout, stderr), true
	case "update":
		return updateCommand(inv, stdout, stderr), true
	}
	return 0, false
}

// loader returns the function that loads the configuration: the file
// -config names, or else the one the command line makes (a folder or the
// demo site, and -listen).
func (inv *invocation) loader() func() (*config.Config, error) {
	path, listen, dir := inv.path, inv.listen, ""
	if len(inv.pos) == 1 {
		dir = inv.pos[0]
	}
	return func() (*config.Config, error) {
		if path == "" {
			return config.Command(dir, listen)
		}
		return loadConfig(path)
	}
}

// runWithConfig runs the commands that use the configuration and exit;
// done is false for serve.
func (inv *invocation) runWithConfig(cfg *config.Config, stdout, stderr io.Writer) (code int, done bool) {
	switch inv.name {
	case "check", "reload":
		// What the server would load and compile, before its state
		// directory or the signal.
		if _, err := build(cfg); err != nil {
			fmt.Fprintln(stderr, err)
			return 1, true
		}
	}
	switch inv.name {
	case "check":
		if err := errors.Join(cfg.CheckStateDir(), cfg.CheckLogFiles()); err != nil {
			fmt.Fprintln(stderr, err)
			return 1, true
		}
		fmt.Fprintf(stdout, "%s: ok (%d sites)\n", inv.path, len(cfg.Sites))
		return 0, true
	case "reload":
		pid := 0
		if v := inv.vals["pid"]; v != nil && *v != "" {
			n, err := strconv.Atoi(*v)
			if err != nil {
				return usageError(stderr, "reload: -pid %q is not a process ID", *v), true
			}
			pid = n
		}
		return signalServer(cfg, pid, stdout, stderr), true
	case "health":
		return health(cfg, stdout, stderr), true
	case "maintenance":
		return setMaintenance(cfg, inv.pos[0], stdout, stderr), true
	case "ca-cert":
		return caCert(cfg, stdout, stderr), true
	}
	return 0, false
}

// health probes the server of cfg over its plain-HTTP listener, or else
// its HTTPS one.
func health(cfg *config.Config, stdout, stderr io.Writer) int {
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

// serveConfig serves cfg until SIGINT or SIGTERM, reloading it with load
// on SIGHUP and reopening the access log on SIGUSR1.
func serveConfig(cfg *config.Config, load func() (*config.Config, error), stderr io.Writer) int {
	if sc := cfg.Server; sc.LogFile != "" {
		// Opened now, so that a path that cannot be written stops the start.
		f := accesslog.RollingFile(sc.LogFile, accesslog.Roll{MaxBytes: int64(sc.LogMaxBytes), Keep: sc.LogKeep})
		if _, err := f.Write(nil); err != nil {
			fmt.Fprintf(stderr, "%s: log_file: %v\n", cfg.Where("server.log_file"), err)
			return 1
		}
		defer f.Close()
		stderr = io.MultiWriter(stderr, f)
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
