package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// The commands and their flags are defined once, here: the usage text
// (appliance help) and the manual page (appliance man, which the Debian
// package ships as appliance(1)) are both written from them.

// option is a command-line flag; one without arg is a switch.
type option struct {
	name, arg, help string
}

var (
	configOption = option{"config", "FILE", "the configuration file (TOML); relative paths in it are relative to its directory"}
	pidOption    = option{"pid", "PID", "reload: the server's process ID (default: the one in server.pid_file)"}
	caOption     = option{"ca", "FILE", "deploy, releases, rollback: PEM certificates the site's HTTPS certificate must chain to, instead of the system's (appliance ca-cert prints the local CA's)"}
	certOption   = option{"cert", "FILE", "deploy, releases, rollback: a PEM client certificate (the chain, leaf first) for a site with deploy_client_ca, instead of the token (default: $APPLIANCE_DEPLOY_CERT)"}
	vcsOption    = option{"vcs", "", "deploy: send the version control directories (.git, .hg, .svn) too; by default they are left out"}
	keyOption    = option{"key", "FILE", "deploy, releases, rollback: the PEM private key of -cert (default: $APPLIANCE_DEPLOY_KEY)"}
	listenOption = option{"listen", "ADDR", "with a folder or the demo site: the plain-HTTP listen address (default localhost:8080)"}
)

// command is a subcommand of appliance.
type command struct {
	name     string
	args     string // the synopsis after the name
	summary  string // for the usage text, one line
	help     string // for the manual page, a paragraph
	options  []option
	hidden   bool // not in the usage text nor the manual (man)
	needsCfg bool // -config FILE is required
}

var commands = []command{
	{
		name: "serve", args: "[-config FILE | DIR [-listen ADDR]]",
		summary: "serve the configured sites (the default command); with DIR, that folder as one catch-all site; with neither, an embedded demo site, both on http://localhost:8080",
		help: "Serve the sites of the configuration file until SIGTERM or SIGINT; SIGHUP reloads the configuration, SIGUSR1 reopens the access log. " +
			"With DIR instead of -config, serve that folder as one catch-all site (index.html, no listing) on -listen, like a quick file server. " +
			"With neither, serve the embedded demo site. serve is the default command: appliance -config FILE is appliance serve -config FILE.",
		options: []option{configOption, listenOption},
	},
	{
		name: "check", args: "-config FILE", needsCfg: true,
		summary: "validate a configuration and the state directory its TLS sites need, and exit",
		help: "Validate the configuration file and exit: 0 when it is valid, 1 with every problem printed as file:line: message. " +
			"When a site has tls = \"local\" or \"acme\", it also checks that this user can create and write server.state_dir, as serve will need to.",
		options: []option{configOption},
	},
	{
		name: "reload", args: "-config FILE [-pid PID]", needsCfg: true,
		summary: "validate a configuration, then tell the server named by -pid or by its server.pid_file to load it (SIGHUP)",
		help: "Validate the configuration file, then send SIGHUP to the process -pid names, or else to the one whose ID is in its server.pid_file. " +
			"Under systemd, use systemctl reload appliance (which runs appliance reload -pid $MAINPID).",
		options: []option{configOption, pidOption},
	},
	{
		name: "maintenance", args: "on|off -config FILE", needsCfg: true,
		summary: "put every site of the server into maintenance (503 with Retry-After, except /.well-known/), or take them out, without a reload",
		help: "With on, create the file maintenance in server.state_dir; with off, remove it. While it is there, the server answers every request but those under /.well-known/ " +
			"with 503, Retry-After (server.maintenance_retry_after) and the site's maintenance_page, or a built-in page. The server looks for the file every second and on SIGHUP, so no reload is needed, and logs each change.",
		options: []option{configOption},
	},
	{
		name: "ca-cert", args: "-config FILE", needsCfg: true,
		summary: "print the root certificate of the local CA (tls = \"local\") of server.state_dir, to install in clients",
		help: "Print the PEM root certificate of the private CA that tls = \"local\" sites use, from server.state_dir/local-ca, to install in browsers and systems. " +
			"The server creates the CA when it first needs it; run as another user, ca-cert creates it too, but as root it refuses to create one " +
			"(the files would be root's, unreadable for a service with its own user): start the service first.",
		options: []option{configOption},
	},
	{
		name: "health", args: "[-config FILE]",
		summary: "exit 0 if the server of this configuration answers on its plain-HTTP listener, or HTTPS without one (a container healthcheck)",
		help:    "Exit 0 if the server of the configuration answers on its plain-HTTP listener (a HEAD request), or on its HTTPS listener when it has no plain one (a TLS handshake); 1 otherwise. For container health checks.",
		options: []option{configOption},
	},
	{
		name:    "hash-password",
		summary: "read a password and print its argon2id hash, for [[site.auth]] users, deploy_token and admin.token",
		help: "Read a password and print its argon2id hash, for the users of a [[site.auth]] rule, a site's deploy_token or admin.token. " +
			"On a terminal it prompts on standard error, reads without echo and asks again to confirm; otherwise it reads one line from standard input, silently.",
	},
	{
		name: "deploy", args: "[-ca FILE] [-cert FILE -key FILE] [-vcs] DIR URL",
		summary: "publish the folder DIR as the new release of the site URL names, uploading only the files it lacks (token: APPLIANCE_DEPLOY_TOKEN)",
		help: "Publish the folder DIR as the new content of the site that URL names (https://example.test/; http:// only to loopback). " +
			"The site needs a deploy_token, the hash of the token given in the environment variable APPLIANCE_DEPLOY_TOKEN, " +
			"or a deploy_client_ca that issued the client certificate given with -cert and -key. " +
			"Only the files the server does not have already are uploaded; the release is assembled beside the active one and activated at once. " +
			"Interrupted, the same command finishes the job without sending again what arrived. -ca FILE names the certificates to trust instead of the system's. " +
			"The version control directories .git, .hg and .svn are left out (and named), unless -vcs is given.",
		options: []option{caOption, certOption, keyOption, vcsOption},
	},
	{
		name: "releases", args: "[-ca FILE] [-cert FILE -key FILE] URL",
		summary: "list the kept releases of the site URL names: id, time, files, bytes, which is active",
		help:    "List the releases the server keeps for the site that URL names, newest first: id, time, files, bytes, and a * on the active one.",
		options: []option{caOption, certOption, keyOption},
	},
	{
		name: "rollback", args: "[-ca FILE] [-cert FILE -key FILE] URL",
		summary: "activate the release before the active one of the site URL names",
		help:    "Activate the release before the active one of the site that URL names; again, the one before that.",
		options: []option{caOption, certOption, keyOption},
	},
	{
		name: "update", args: "IMAGE URL",
		summary: "update a Raspberry Pi board to the image IMAGE through its admin listener URL; it rolls back if the new system fails (token: APPLIANCE_ADMIN_TOKEN)",
		help: "Send the root file system of IMAGE (an appliance-rpi.img from the same builder) to the board whose admin listener URL names (http://board:8081/), with admin.token's token from APPLIANCE_ADMIN_TOKEN. " +
			"The board writes it to its other root partition, checks its SHA-256, copies its kernel, device trees and overlays into the other boot slot and reboots into that slot once (the firmware's tryboot); the new appliance commits it once it serves, " +
			"else the board reboots to the old slot, kernel and root, at the deadline (90 s). The command waits (at most 5 minutes) and exits 0 when the new version runs, 1 when the board rolled back. " +
			"The firmware and config.txt are not updated. /perm (config, site, certificates) is kept.",
	},
	{name: "version", summary: "print the version (also -version, --version)", help: "Print the version, the Go version and the platform; -version and --version do the same."},
	{name: "help", summary: "print this help (also -h, --help)", help: "Print the usage on standard output; -h and --help do the same."},
	{name: "man", hidden: true, summary: "print this manual page (roff)"},
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// usage is the text of appliance help.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: appliance [command] [flags]\n\ncommands:\n")
	for _, c := range commands {
		if c.hidden {
			continue
		}
		head := "  " + c.name
		if c.args != "" {
			head += " " + c.args
		}
		b.WriteString(head + "\n")
		b.WriteString(wrap(c.summary, "        ", 74))
	}
	b.WriteString("\nflags:\n")
	for _, o := range []option{configOption, listenOption} {
		b.WriteString("  -" + o.name + " " + o.arg + "\n")
		b.WriteString(wrap(o.help, "        ", 74))
	}
	b.WriteString("\nappliance help COMMAND (or COMMAND -h) says more of one; appliance man prints\nthe manual, appliance(1); every configuration key is in config.example.toml.\n")
	return b.String()
}

// commandUsage is the help of one command (appliance COMMAND -h,
// appliance help COMMAND): its synopsis, what it does and its flags.
func commandUsage(c *command) string {
	var b strings.Builder
	b.WriteString("usage: appliance " + c.name)
	if c.args != "" {
		b.WriteString(" " + c.args)
	}
	b.WriteString("\n\n" + wrap(c.help, "  ", 76))
	if c.needsCfg {
		b.WriteString("  -config FILE is required.\n")
	}
	if len(c.options) > 0 {
		b.WriteString("\nflags:\n")
		for _, o := range c.options {
			head := "  -" + o.name
			if o.arg != "" {
				head += " " + o.arg
			}
			b.WriteString(head + "\n" + wrap(o.help, "        ", 74))
		}
	}
	if env := environment(c.name); len(env) > 0 {
		b.WriteString("\nenvironment:\n")
		for _, e := range env {
			b.WriteString("  " + e.name + "\n" + wrap(e.help, "        ", 74))
		}
	}
	return b.String()
}

// envVar is an environment variable a command reads.
type envVar struct {
	name, help string
	commands   []string
}

var envVars = []envVar{
	{"APPLIANCE_DEPLOY_TOKEN", "the token whose hash is the site's deploy_token", []string{"deploy", "releases", "rollback"}},
	{"APPLIANCE_DEPLOY_CERT", "the PEM client certificate for a site with deploy_client_ca, when -cert is not given", []string{"deploy", "releases", "rollback"}},
	{"APPLIANCE_DEPLOY_KEY", "the PEM private key of that certificate, when -key is not given", []string{"deploy", "releases", "rollback"}},
	{"APPLIANCE_ADMIN_TOKEN", "the token whose hash is the board's admin.token", []string{"update"}},
}

// environment lists the environment variables command reads.
func environment(command string) []envVar {
	var out []envVar
	for _, e := range envVars {
		if slices.Contains(e.commands, command) {
			out = append(out, e)
		}
	}
	return out
}

// wrap fills text into lines of at most width, each starting with indent.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, w := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	return b.String() + line + "\n"
}

// flags returns the flag set of c: its options, parsed into vals by name.
func (c *command) flags(vals map[string]*string) *flag.FlagSet {
	fl := flag.NewFlagSet(c.name, flag.ContinueOnError)
	for _, o := range c.options {
		if o.arg == "" { // a switch: "true" when on, else ""
			v := new(string)
			fl.BoolFunc(o.name, o.help, func(s string) error {
				on, err := strconv.ParseBool(s)
				if *v = ""; on {
					*v = "true"
				}
				return err
			})
			vals[o.name] = v
			continue
		}
		vals[o.name] = fl.String(o.name, "", o.help)
	}
	return fl
}

// manPage is appliance(1), in roff (man macros).
func manPage() string {
	var b strings.Builder
	esc := func(s string) string {
		s = strings.ReplaceAll(s, `\`, `\e`)
		s = strings.ReplaceAll(s, "-", `\-`)
		// A line starting with . or ' would be a request.
		return strings.ReplaceAll(s, "\n.", "\n\\&.")
	}
	b.WriteString(`.TH APPLIANCE 1 "" "appliance" "User Commands"
.SH NAME
appliance \- static\-site HTTPS server for small machines
.SH SYNOPSIS
`)
	for _, c := range commands {
		if c.hidden {
			continue
		}
		b.WriteString(".B appliance " + esc(c.name) + "\n")
		if c.args != "" {
			b.WriteString(esc(c.args) + "\n")
		}
		b.WriteString(".br\n")
	}
	b.WriteString(`.SH DESCRIPTION
.B appliance
serves many static sites (virtual hosts) from one binary: conditional and
range requests as RFC 9110 says, cached and compressed files, redirects and
rewrites, and HTTPS with certificates from ACME, from files or from a
private CA. It runs as a socket\-activated, hardened systemd service, in a
container or on a Raspberry Pi.
.SH COMMANDS
`)
	for _, c := range commands {
		if c.hidden {
			continue
		}
		b.WriteString(".TP\n.B " + esc(c.name) + "\n" + esc(c.help) + "\n")
		if c.needsCfg {
			b.WriteString("The \\fB\\-config\\fR flag is required.\n")
		}
	}
	b.WriteString(".SH OPTIONS\n")
	for _, o := range []option{configOption, listenOption, pidOption, caOption, certOption, keyOption, vcsOption} {
		if o.arg == "" {
			b.WriteString(".TP\n.B \\-" + esc(o.name) + "\n" + esc(o.help) + "\n")
			continue
		}
		b.WriteString(".TP\n.BI \\-" + esc(o.name) + " \" " + esc(o.arg) + "\"\n" + esc(o.help) + "\n")
	}
	b.WriteString(".SH ENVIRONMENT\n")
	for _, e := range envVars {
		b.WriteString(".TP\n.B " + e.name + "\n" + esc(e.help) + " (" + esc(strings.Join(e.commands, ", ")) + ").\n")
	}
	b.WriteString(`.SH SIGNALS
.TP
.B SIGHUP
Reload the configuration; a configuration that is not valid is refused and the running one stays.
.TP
.B SIGUSR1
Reopen the access log, after rotation.
.TP
.BR SIGTERM ", " SIGINT
Stop accepting connections and let in\-flight requests finish within server.shutdown_timeout.
.SH EXIT STATUS
0 on success, 1 when the command failed (an invalid configuration, a server that does not answer), 2 for a usage error.
.SH FILES
.TP
.I /etc/appliance/appliance.toml
The configuration of the packaged service.
.TP
.I /usr/share/doc/appliance/config.example.toml
Every configuration key, with its default.
.TP
.I /var/lib/appliance
The default server.state_dir: ACME account and certificates, the local CA.
.SH EXAMPLES
.TP
.B appliance serve ./public \-listen :8000
Serve a folder on port 8000.
.TP
.B appliance check \-config /etc/appliance/appliance.toml
Validate the configuration before reloading the service.
.TP
.B appliance hash\-password
Hash a password for a [[site.auth]] user or a deploy_token.
.TP
.B APPLIANCE_DEPLOY_TOKEN=... appliance deploy ./public https://example.test/
Publish a folder as the site's new release.
.TP
.B APPLIANCE_ADMIN_TOKEN=... appliance update appliance\-rpi.img http://appliance:8081/
Update a Raspberry Pi board to a new image; it rolls back by itself if the new version does not serve.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1)
`)
	return b.String()
}

// usageError prints a usage error with the usage text on stderr: status 2.
func usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "appliance: "+format+"\n\n%s", append(args, usage())...)
	return 2
}
