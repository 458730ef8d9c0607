// Package config loads and validates the appliance's TOML configuration.
// Every error names the file and line it comes from. A Config is data:
// the certificate and CA files it names are loaded by whoever serves it.
package config

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"appliance/accesslog"
	"appliance/compress"
	"appliance/internal/language"
	"appliance/realip"
	"appliance/rewrite"
	"appliance/serve"
	"appliance/vhost"
)

// Config is the whole configuration file.
type Config struct {
	Server Server `toml:"server"`
	Admin  Admin  `toml:"admin"`
	ACME   ACME   `toml:"acme"`
	Cache  Cache  `toml:"cache"`
	Deploy Deploy `toml:"deploy"`
	Sites  []Site `toml:"site"`

	file  string         // the file it was loaded from ("" built in)
	lines map[string]int // the line of each key in it
}

// ACME is the account that obtains certificates for tls = "acme" sites.
type ACME struct {
	Email     string `toml:"email"`     // contact for expiry notices; optional
	Directory string `toml:"directory"` // the CA's directory URL; "": Let's Encrypt (package certs' default)
	// CARoot is a PEM bundle that the CA's own HTTPS certificate chains
	// to, for a private ACME CA; default the system's roots.
	CARoot string `toml:"ca_root"`
	// External account binding, for CAs that require it.
	EABKeyID string `toml:"eab_kid"`
	EABHMAC  string `toml:"eab_hmac"` // base64url, as CAs hand it out
}

// EABKey returns the decoded eab_hmac (nil if it does not decode, which
// Parse refuses).
func (a ACME) EABKey() []byte {
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(a.EABHMAC, "="))
	if err != nil || len(key) == 0 {
		return nil
	}
	return key
}

// Server holds the listeners and the limits that protect them.
type Server struct {
	HTTP              string   `toml:"http"`                // plain-HTTP listen address; "" disables
	HTTPS             string   `toml:"https"`               // HTTPS listen address; "" disables
	StateDir          string   `toml:"state_dir"`           // certificates and keys
	ReadHeaderTimeout Duration `toml:"read_header_timeout"` // whole request head
	ReadTimeout       Duration `toml:"read_timeout"`        // whole request, body included
	WriteTimeout      Duration `toml:"write_timeout"`       // a response may stall this long
	IdleTimeout       Duration `toml:"idle_timeout"`        // keep-alive between requests
	ShutdownTimeout   Duration `toml:"shutdown_timeout"`    // grace for in-flight requests
	MaxHeaderBytes    Size     `toml:"max_header_bytes"`
	// FastHTTP1 serves plain GET and HEAD requests on the appliance's own
	// HTTP/1.1 transport; false leaves every request to net/http.
	FastHTTP1 *bool `toml:"fast_http1"`
	// FastHTTP2 serves HTTP/2 on the appliance's own server (package
	// h2); false leaves HTTP/2 to net/http.
	FastHTTP2 *bool `toml:"fast_http2"`
	// Connections past these limits are closed as soon as they are
	// accepted; 0 means no limit.
	MaxConnections      int `toml:"max_connections"`
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// AccessLog is a file path, "stdout" (journald under systemd) or ""
	// for none; SIGUSR1 reopens the file after rotation.
	AccessLog       string `toml:"access_log"`
	AccessLogFormat string `toml:"access_log_format"` // combined (default) or json
	// A file access log rolls past AccessLogMaxBytes (default 16MiB,
	// rounded up to whole MiB) and keeps AccessLogKeep old files
	// (default 4).
	AccessLogMaxBytes Size `toml:"access_log_max_bytes"`
	AccessLogKeep     int  `toml:"access_log_keep"`
	// LogFile, when set, also writes the server's own log (not the
	// access log) to this file, rolled by LogMaxBytes and LogKeep (the
	// same defaults); the log always goes to standard error too.
	LogFile     string `toml:"log_file"`
	LogMaxBytes Size   `toml:"log_max_bytes"`
	LogKeep     int    `toml:"log_keep"`
	// PIDFile, when set, names where the server writes its process ID, so
	// that `appliance reload` finds it (under systemd, use systemctl).
	PIDFile string `toml:"pid_file"`

	// TrustedProxies are the proxies and load balancers (CIDR prefixes
	// or addresses) whose word about the client is believed: the
	// ClientIPHeader of their requests and, on the listeners named by
	// ProxyProtocol, the PROXY protocol header of their connections.
	// Empty (the default): nobody's.
	TrustedProxies []string `toml:"trusted_proxies"`
	// ClientIPHeader is the header the trusted proxies append the client
	// to: "X-Forwarded-For" (the default) or "Forwarded" (RFC 7239).
	// The other one is never read.
	ClientIPHeader string `toml:"client_ip_header"`
	// ProxyProtocol names the listeners ("http", "https"; true: all)
	// whose connections from trusted proxies may start with a PROXY
	// protocol header (v1 or v2).
	ProxyProtocol Listeners `toml:"proxy_protocol"`
	// PublicHTTPSPort is the port the world reaches HTTPS on, for the
	// redirects from plain HTTP; 0 (the default): the HTTPS listener's.
	PublicHTTPSPort int `toml:"public_https_port"`
	// RateLimitClients bounds the client addresses that each
	// [[site.rate_limit]] rule, and each site's auth lockout, remember;
	// 0: the default, 10000.
	RateLimitClients int `toml:"rate_limit_clients"`
	// MaintenanceRetryAfter is the Retry-After of the 503 answers while
	// the file "maintenance" is in state_dir; 0: the default, 300 seconds.
	MaintenanceRetryAfter Seconds `toml:"maintenance_retry_after"`
}

// Listeners names listeners: "http", "https". In the file it is a list
// of names, or true (both) or false (none).
type Listeners []string

// UnmarshalTOML reads a boolean or a list of listener names.
func (l *Listeners) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case bool:
		*l = nil
		if v {
			*l = Listeners{"*"}
		}
		return nil
	case []any:
		out := Listeners{}
		for _, e := range v {
			name, ok := e.(string)
			if !ok {
				return fmt.Errorf("want listener names (\"http\", \"https\"), not %v", e)
			}
			out = append(out, name)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("want true, false or a list of listeners ([\"http\", \"https\"]), not %v", v)
}

// Has reports whether the listener name is listed ("*", which true
// stands for, lists every listener).
func (l Listeners) Has(name string) bool { return slices.Contains(l, name) || slices.Contains(l, "*") }

// Fast reports whether the fast HTTP/1.1 transport is on (the default).
func (s Server) Fast() bool { return s.FastHTTP1 == nil || *s.FastHTTP1 }

// FastH2 reports whether HTTP/2 is served by package h2 (the default).
func (s Server) FastH2() bool { return s.FastHTTP2 == nil || *s.FastHTTP2 }

// Admin is the operator's listener: /healthz, Prometheus /metrics and
// /log, the server's recent log. Off unless listen is set; it has no
// authentication: keep it on loopback or a private network.
type Admin struct {
	Listen string `toml:"listen"`
	// PProf serves Go's CPU and memory profiles under /debug/pprof/
	// (profile?seconds=N, allocs, heap, goroutine) for diagnosis.
	PProf bool `toml:"pprof"`
	// Token, a hash from `appliance hash-password`, makes /log,
	// /metrics and /debug/pprof/ ask for "Authorization: Bearer TOKEN"
	// (/healthz stays open for probes).
	Token string `toml:"token"`
}

// Deploy bounds what `appliance deploy` can make the server store, for
// each site with a deploy_token; zero fields take the deploy package's
// defaults.
type Deploy struct {
	Keep             int  `toml:"keep"`               // releases kept per site, the active one included; default 5
	MaxFiles         int  `toml:"max_files"`          // files in a release; default 10000
	MaxFileBytes     Size `toml:"max_file_bytes"`     // one file; default 64MiB
	MaxSiteBytes     Size `toml:"max_site_bytes"`     // a site's stored content: every kept release and pending uploads; default 1GiB
	MaxManifestBytes Size `toml:"max_manifest_bytes"` // one manifest (JSON); default 4MiB
	MaxUploads       int  `toml:"max_uploads"`        // uploads at once per site; default 4
}

// Cache bounds the in-memory file cache shared by all sites; zero
// values take package serve's defaults (serve.CacheOptions).
type Cache struct {
	MaxBytes     Size     `toml:"max_bytes"`
	MaxFileBytes Size     `toml:"max_file_bytes"`
	Revalidate   Duration `toml:"revalidate"`
	// Files up to this size get compressed variants built once and held
	// in the cache; larger ones are compressed as a stream per request.
	MaxCompressBytes Size `toml:"max_compress_bytes"`
}

// Site is one [[site]]: the hosts it answers and how it serves its root.
type Site struct {
	Hosts            []string          `toml:"hosts"`
	Root             string            `toml:"root"`
	Index            []string          `toml:"index"` // default index.html
	ErrorPages       map[string]string `toml:"error_pages"`
	CleanURLs        bool              `toml:"clean_urls"`
	DirectoryListing bool              `toml:"directory_listing"`
	CacheControl     string            `toml:"cache_control"` // default no-cache
	FollowSymlinks   *bool             `toml:"follow_symlinks"`
	Types            map[string]string `toml:"types"`
	Encodings        *[]string         `toml:"encodings"`          // nil: all; []: none
	CompressMinBytes Size              `toml:"compress_min_bytes"` // default 512
	Precompressed    *bool             `toml:"precompressed"`      // serve app.js.br etc.; default true
	AccessLog        *bool             `toml:"access_log"`         // false: this site's requests are not logged
	// DeployToken, a hash from `appliance hash-password`, makes the site
	// deployable (`appliance deploy`): its content is then the active
	// release in state_dir/sites/<first host>/, and root must be unset.
	DeployToken string `toml:"deploy_token"`
	// DeployClientCA, a PEM bundle, makes the site deployable by a client
	// certificate that chains to it, presented in the TLS handshake for
	// one of the site's names (with or without DeployToken).
	DeployClientCA string `toml:"deploy_client_ca"`
	// RedirectCacheControl is the Cache-Control of permanent redirects
	// (301, 308); temporary ones are never stored.
	RedirectCacheControl string `toml:"redirect_cache_control"`
	// ReprDigest sends Repr-Digest (RFC 9530) on every 200 and 206 of a
	// file; false, the default, only to clients that ask for it.
	ReprDigest bool `toml:"repr_digest"`
	// Languages turns on language variants: NAME.TAG beside NAME, for a
	// TAG listed, is NAME in that language, chosen by Accept-Language.
	// DefaultLanguage (default: the first listed) is sent when the client
	// accepts none of a file's languages.
	Languages       []string `toml:"languages"`
	DefaultLanguage string   `toml:"default_language"`

	// Rules (see package rewrite), applied in this order.
	RedirectTo      string     `toml:"redirect_to"`      // whole-host redirect, keeping path and query
	Redirects       []Redirect `toml:"redirect"`         // first match wins
	Rewrites        []Rewrite  `toml:"rewrite"`          // applied in order, at most 10
	TrailingSlash   string     `toml:"trailing_slash"`   // "add" or "remove"
	Fallback        string     `toml:"fallback"`         // single-page-app shell for missing non-file paths
	Access          []Access   `toml:"access"`           // IP allow/deny per path prefix
	Auth            []Auth     `toml:"auth"`             // HTTP Basic per path prefix
	CORS            []CORS     `toml:"cors"`             // cross-origin access per path glob
	Headers         []Headers  `toml:"headers"`          // response header changes per path
	SecurityHeaders string     `toml:"security_headers"` // "basic", "strict" or "off"
	// SiteRulesFiles reads _redirects and _headers in the root (Netlify's
	// and Cloudflare Pages' syntax) as more rules, and stops serving them.
	SiteRulesFiles bool `toml:"site_rules_files"`

	// Fixed responses and rate limits (see package rewrite): a limit
	// applies before every other rule, a fixed response after access and
	// auth.
	Respond    []Respond   `toml:"respond"`    // fixed answers per path prefix
	RateLimits []RateLimit `toml:"rate_limit"` // requests per client address per path prefix
	// MaintenancePage is the page in the root sent with 503 while the
	// server is in maintenance; "": a built-in one.
	MaintenancePage string `toml:"maintenance_page"`

	// TLS: "off" (the default without server.https), "manual" (Cert and
	// Key files), "local" (the private CA in state_dir) or "acme"
	// (certificates from [acme]). With server.https the default is "acme"
	// when every host is a public DNS name, "local" otherwise.
	TLS  string `toml:"tls"`
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	HSTS string `toml:"hsts"` // Strict-Transport-Security on HTTPS; default max-age=31536000, "off" for none
	// HTTPSRedirect, on by default, sends a TLS site's plain-HTTP
	// requests to HTTPS; false serves them over plain HTTP as well.
	HTTPSRedirect *bool `toml:"https_redirect"`
	// ClientCA, a PEM bundle, makes the site require client certificates
	// that chain to it (mutual TLS).
	ClientCA string `toml:"client_ca"`

	Demo bool `toml:"-"` // serves the embedded demo site instead of Root
}

// Match holds the conditions a redirect or rewrite may have.
type Match struct {
	Methods   []string `toml:"methods"`
	Host      string   `toml:"host"`       // RE2 on the host
	IfExists  bool     `toml:"if_exists"`  // the path names a file or directory
	IfMissing bool     `toml:"if_missing"` // it does not
	IfHeader  string   `toml:"if_header"`  // the request has this header
	Languages []string `toml:"languages"`  // the request prefers one of these languages
}

func (m Match) cond() rewrite.Cond {
	return rewrite.Cond{Methods: m.Methods, Host: m.Host, IfExists: m.IfExists, IfMissing: m.IfMissing, IfHeader: m.IfHeader, Languages: m.Languages}
}

// Redirect is a [[site.redirect]].
type Redirect struct {
	From   string `toml:"from"`
	To     string `toml:"to"`
	Status int    `toml:"status"`
	Match
}

// Rewrite is a [[site.rewrite]].
type Rewrite struct {
	From string `toml:"from"`
	To   string `toml:"to"`
	Last bool   `toml:"last"`
	Match
}

// Headers is a [[site.headers]].
type Headers struct {
	Path   string            `toml:"path"`  // glob: * within a segment, ** across
	Match  string            `toml:"match"` // or RE2
	Set    map[string]string `toml:"set"`
	Remove []string          `toml:"remove"`
}

// Auth is a [[site.auth]].
type Auth struct {
	Path  string            `toml:"path"`
	Realm string            `toml:"realm"`
	Users map[string]string `toml:"users"` // name -> hash from `appliance hash-password`
}

// Respond is a [[site.respond]]: a fixed answer on a path prefix.
type Respond struct {
	Path       string  `toml:"path"`
	Status     int     `toml:"status"`
	Body       string  `toml:"body"`        // text, sent as text/plain
	Page       string  `toml:"page"`        // or a file in the root
	RetryAfter Seconds `toml:"retry_after"` // for 429 and 503
}

// RateLimit is a [[site.rate_limit]]: a token bucket per client address
// on a path prefix.
type RateLimit struct {
	Path  string `toml:"path"`
	Rate  string `toml:"rate"`  // "10/s", "600/m"...
	Burst int    `toml:"burst"` // default the count of the rate
}

// Access is a [[site.access]].
type Access struct {
	Path  string   `toml:"path"`
	Allow []string `toml:"allow"`
	Deny  []string `toml:"deny"`
}

// CORS is a [[site.cors]].
type CORS struct {
	Path    string   `toml:"path"`
	Origins []string `toml:"origins"`
	MaxAge  int      `toml:"max_age"`
}

// Follow reports whether symbolic links inside the root are followed.
// Deployed reports whether the site's content comes from `appliance
// deploy`, in server.state_dir, rather than from root.
func (s *Site) Deployed() bool { return s.DeployToken != "" || s.DeployClientCA != "" }

// DeployDir is the directory of server.state_dir/sites where a deployed
// site keeps its releases ("" for another site): named after its first
// host, "*" as "_default", any byte but letters, digits, '.' and '-' as
// '_'. Two sites may map to one name ("*" and "_default"): validation
// refuses that.
func (s *Site) DeployDir() string {
	if !s.Deployed() || len(s.Hosts) == 0 {
		return ""
	}
	if s.Hosts[0] == "*" {
		return "_default"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(s.Hosts[0]))
}

func (s *Site) Follow() bool { return s.FollowSymlinks == nil || *s.FollowSymlinks }

// Logged reports whether the site's requests go to the access log.
func (s *Site) Logged() bool { return s.AccessLog == nil || *s.AccessLog }

// Sidecars reports whether precompressed sidecar files are served.
func (s *Site) Sidecars() bool { return s.Precompressed == nil || *s.Precompressed }

// Codings returns the content codings the site offers besides identity.
func (s *Site) Codings() []compress.Coding {
	if s.Encodings == nil {
		return []compress.Coding{compress.Zstd, compress.Brotli, compress.Gzip, compress.Deflate}
	}
	var cs []compress.Coding
	for _, name := range *s.Encodings {
		if c, ok := compress.Parse(name); ok && c != compress.Identity {
			cs = append(cs, c)
		}
	}
	return cs
}

// RedirectsToHTTPS reports whether a TLS site's plain-HTTP requests are
// redirected to HTTPS.
func (s *Site) RedirectsToHTTPS() bool { return s.HTTPSRedirect == nil || *s.HTTPSRedirect }

// Pages returns the error pages keyed by status code.
func (s *Site) Pages() map[int]string {
	m := make(map[int]string, len(s.ErrorPages))
	for k, v := range s.ErrorPages {
		n, _ := strconv.Atoi(k)
		m[n] = v
	}
	return m
}

// DefaultStateDir is the state directory when the file names none.
const DefaultStateDir = "/var/lib/appliance"

// Defaults.
const (
	defaultHTTP              = "localhost:8080"
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultWriteTimeout      = 60 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultShutdownTimeout   = 10 * time.Second
	defaultMaxHeaderBytes    = 32 << 10
	defaultMaxConnections    = 4096 // about 20 KiB each when idle: 80 MiB at most
	defaultHSTS              = "max-age=31536000"
)

// Default is the configuration used without a file: the embedded demo
// site on http://localhost:8080.
func Default() *Config {
	c := &Config{Server: Server{HTTP: defaultHTTP}, Sites: []Site{{
		Hosts:      []string{"*"},
		Demo:       true,
		CleanURLs:  true,
		ErrorPages: map[string]string{"404": "/404.html"},
	}}}
	c.applyDefaults()
	return c
}

// Error is one problem with a configuration, at a place in its file.
type Error struct {
	File string
	Line int // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors is every problem found; its message has one per line.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes and validates a configuration; file names it in errors,
// and relative paths in it are resolved against file's directory. Every
// problem is reported, not only the first: a value of the wrong type or
// form is set aside and the rest is decoded and validated.
func Parse(file string, data []byte) (*Config, error) {
	return parse(file, data, Target{})
}

func parse(file string, data []byte, t Target) (*Config, error) {
	c, md, errs, dropped := decode(file, data)
	if c == nil {
		return nil, errs
	}
	v := &validator{file: file, lines: keyLines(string(data)), path: t.Path}
	seen := map[string]bool{}
	for _, k := range md.Undecoded() {
		// The decoder names a key once per table it appears in, without
		// the array index; unknown reports every place at once.
		if key := strings.Join(k, "."); !seen[key] {
			seen[key] = true
			v.unknown(k)
		}
	}
	if !md.IsDefined("server", "http") && c.Server.HTTPS == "" {
		c.Server.HTTP = defaultHTTP
	}
	c.file, c.lines = file, v.lines
	c.resolvePaths(filepath.Dir(file))
	c.applyDefaults()
	c.validate(v)
	if t.Rules != nil {
		t.Rules(c, v.errorf)
	}
	for _, e := range v.errs {
		if !dropped[e.Line] || e.Line == 0 {
			errs = append(errs, e)
		}
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return a.Line - b.Line })
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// decode decodes data into a Config. A value of the wrong type or form is
// an error, and its line (in dropped) is set aside so that the rest can
// be decoded; the Config is nil when decoding cannot go on.
func decode(file string, data []byte) (c *Config, md toml.MetaData, errs Errors, dropped map[int]bool) {
	dropped = map[int]bool{} // lines set aside for a bad value
	// Syntax first: a document that does not parse has nothing to set
	// aside.
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, md, Errors{{File: file, Line: pe.Position.Line, Msg: pe.Message}}, nil
		}
		return nil, md, Errors{{File: file, Msg: strings.TrimPrefix(err.Error(), "toml: ")}}, nil
	}
	text := string(data)
	for {
		c = &Config{}
		var err error
		md, err = toml.Decode(text, c)
		if err == nil {
			break
		}
		// A value of the wrong type or form: a ParseError naming its
		// line, or "toml: line N (last key "k"): message".
		var e *Error
		var pe toml.ParseError
		if errors.As(err, &pe) && pe.Position.Line > 0 {
			e = &Error{File: file, Line: pe.Position.Line, Msg: pe.Message}
		} else if m := decodeErrRe.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			e = &Error{File: file, Line: line, Msg: m[3] + " (key " + m[2] + ")"}
		} else {
			return nil, md, append(errs, &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "toml: ")}), dropped
		}
		errs = append(errs, e)
		// Set the line aside and decode the rest again, unless that
		// cannot help (the same line again, a table header, or a value
		// over several lines, whose rest would not parse alone).
		lines := strings.SplitAfter(text, "\n")
		if e.Line > len(lines) || dropped[e.Line] || strings.HasPrefix(strings.TrimSpace(lines[e.Line-1]), "[") {
			return nil, md, errs, dropped
		}
		dropped[e.Line] = true
		lines[e.Line-1] = strings.Repeat("\n", strings.Count(lines[e.Line-1], "\n"))
		text = strings.Join(lines, "")
		if _, err := toml.Decode(text, new(map[string]any)); err != nil {
			return nil, md, errs, dropped
		}
	}
	return c, md, errs, dropped
}

// Where returns the place in the configuration file of key
// ("server.state_dir"), or of the nearest table that encloses it:
// "file:line", or the file name alone.
func (c *Config) Where(key string) string {
	if c.file == "" {
		return "the built-in configuration"
	}
	e := &Error{File: c.file, Line: lineOf(c.lines, key)}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	return e.File
}

// resolvePaths makes the relative file paths of the configuration
// relative to dir, the configuration file's directory, rather than to
// the working directory of whoever runs the server.
func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Server.StateDir)
	abs(&c.Server.PIDFile)
	abs(&c.Server.LogFile)
	if c.Server.AccessLog != "stdout" && c.Server.AccessLog != "-" {
		abs(&c.Server.AccessLog)
	}
	abs(&c.ACME.CARoot)
	for i := range c.Sites {
		s := &c.Sites[i]
		abs(&s.Root)
		abs(&s.Cert)
		abs(&s.Key)
		abs(&s.ClientCA)
		abs(&s.DeployClientCA)
	}
}

var decodeErrRe = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

func (c *Config) applyDefaults() {
	s := &c.Server
	setDuration(&s.ReadHeaderTimeout, defaultReadHeaderTimeout)
	setDuration(&s.ReadTimeout, defaultReadTimeout)
	setDuration(&s.WriteTimeout, defaultWriteTimeout)
	setDuration(&s.IdleTimeout, defaultIdleTimeout)
	setDuration(&s.ShutdownTimeout, defaultShutdownTimeout)
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if s.MaxConnections == 0 {
		s.MaxConnections = defaultMaxConnections
	}
	if s.StateDir == "" {
		s.StateDir = DefaultStateDir
	}
	for i := range c.Sites {
		if c.Sites[i].TLS == "" {
			c.Sites[i].TLS = "off"
			if s.HTTPS != "" {
				c.Sites[i].TLS = "local"
				if publicNames(c.Sites[i].Hosts) {
					c.Sites[i].TLS = "acme"
				}
			}
		}
		if c.Sites[i].HSTS == "" {
			c.Sites[i].HSTS = defaultHSTS
		}
	}
}

func setDuration(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// validator collects errors with the line of the key they are about.
type validator struct {
	file  string
	lines map[string]int
	errs  Errors
	path  func(string) (string, bool) // Target.Path; nil: paths as they are
}

// local is where the file at path is on this machine, and whether it
// is to be checked here.
func (v *validator) local(path string) (string, bool) {
	if v.path == nil {
		return path, true
	}
	return v.path(path)
}

// errorf records an error about key ("site.1.root"), placed at that key's
// line or, failing that, at the nearest enclosing table's.
func (v *validator) errorf(key string, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: lineOf(v.lines, key), Msg: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of key in lines or, failing that, of the
// nearest enclosing table; 0 if none is known.
func lineOf(lines map[string]int, key string) int {
	for k := key; k != ""; {
		if l, ok := lines[k]; ok {
			return l
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// unknown reports a key the schema does not have, at each place it is
// used (the decoder names array elements without their index).
func (v *validator) unknown(k toml.Key) {
	want := strings.Join(k, ".")
	found := false
	for key, line := range v.lines {
		if stripIndexes(key) == want {
			v.errs = append(v.errs, &Error{File: v.file, Line: line, Msg: fmt.Sprintf("unknown key %q", want)})
			found = true
		}
	}
	if !found {
		v.errorf("", "unknown key %q", want)
	}
}

func stripIndexes(key string) string {
	parts := strings.Split(key, ".")
	out := parts[:0]
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil || p == "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

func (c *Config) validate(v *validator) {
	s := c.Server
	c.validateListeners(v)
	if s.MaxHeaderBytes < 1024 {
		v.errorf("server.max_header_bytes", "max_header_bytes must be at least 1024")
	}
	if _, err := accesslog.ParseFormat(s.AccessLogFormat); err != nil {
		v.errorf("server.access_log_format", "%v", err)
	}
	if s.MaxConnections < 0 {
		v.errorf("server.max_connections", "max_connections must not be negative")
	}
	if s.MaxConnectionsPerIP < 0 {
		v.errorf("server.max_connections_per_ip", "max_connections_per_ip must not be negative")
	}
	for key, n := range map[string]int64{"access_log_max_bytes": int64(s.AccessLogMaxBytes), "access_log_keep": int64(s.AccessLogKeep),
		"log_max_bytes": int64(s.LogMaxBytes), "log_keep": int64(s.LogKeep)} {
		if n < 0 {
			v.errorf("server."+key, "%s must not be negative", key)
		}
	}
	if s.RateLimitClients < 0 {
		v.errorf("server.rate_limit_clients", "rate_limit_clients must not be negative")
	}
	c.validateProxies(v)
	// Unset sizes are serve's defaults.
	fileBytes, maxBytes := cmp.Or(c.Cache.MaxFileBytes, serve.DefaultCacheFileBytes), cmp.Or(c.Cache.MaxBytes, serve.DefaultCacheBytes)
	if fileBytes > maxBytes {
		v.errorf("cache.max_file_bytes", "max_file_bytes (%d) exceeds max_bytes (%d)", fileBytes, maxBytes)
	}
	if len(c.Sites) == 0 {
		v.errorf("", "no [[site]]: add at least one site with a root")
	}
	c.Deploy.validate(v)
	if c.Admin.Token != "" {
		if _, err := rewrite.NewSecret(c.Admin.Token); err != nil {
			v.errorf("admin.token", "token: %v", err)
		}
	}
	hosts := map[string]int{}
	dirs := map[string]int{}
	acmeSites := false
	for i := range c.Sites {
		c.Sites[i].validate(v, fmt.Sprintf("site.%d", i), len(c.Sites), hosts)
		c.Sites[i].validateTLS(v, fmt.Sprintf("site.%d", i), s.HTTPS != "")
		acmeSites = acmeSites || c.Sites[i].TLS == "acme"
		// Two deployed sites in one directory would serve, and let
		// either's deployers replace, each other's releases.
		if d := c.Sites[i].DeployDir(); d != "" {
			if prev, dup := dirs[d]; dup {
				v.errorf(fmt.Sprintf("site.%d.hosts", i), "this site's first host keeps its releases in server.state_dir/sites/%s, as site %d's does: give it another first host", d, prev+1)
			} else {
				dirs[d] = i
			}
		}
	}
	if acmeSites {
		c.ACME.validate(v)
	}
}

func (d Deploy) validate(v *validator) {
	for key, n := range map[string]int64{"keep": int64(d.Keep), "max_files": int64(d.MaxFiles), "max_file_bytes": int64(d.MaxFileBytes),
		"max_site_bytes": int64(d.MaxSiteBytes), "max_manifest_bytes": int64(d.MaxManifestBytes), "max_uploads": int64(d.MaxUploads)} {
		if n < 0 {
			v.errorf("deploy."+key, "%s must not be negative", key)
		}
	}
	if d.MaxSiteBytes > 0 && d.MaxFileBytes > d.MaxSiteBytes {
		v.errorf("deploy.max_file_bytes", "max_file_bytes (%d) exceeds max_site_bytes (%d)", d.MaxFileBytes, d.MaxSiteBytes)
	}
}

// validateListeners checks the addresses of the HTTP, HTTPS and admin
// listeners.
func (c *Config) validateListeners(v *validator) {
	s := c.Server
	if s.HTTP == "" && s.HTTPS == "" {
		v.errorf("server.http", "no listener: server.http = \"\" disables plain HTTP and server.https is not set")
	}
	if s.HTTP != "" {
		if err := checkAddr(s.HTTP); err != nil {
			v.errorf("server.http", "server.http: %v", err)
		}
	}
	if s.HTTPS != "" {
		if err := checkAddr(s.HTTPS); err != nil {
			v.errorf("server.https", "server.https: %v", err)
		} else if s.HTTPS == s.HTTP && !strings.HasSuffix(s.HTTPS, ":0") {
			v.errorf("server.https", "server.https must differ from server.http")
		}
	}
	if a := c.Admin.Listen; a != "" {
		if err := checkAddr(a); err != nil {
			v.errorf("admin.listen", "admin.listen: %v", err)
		} else if a == s.HTTP && !strings.HasSuffix(a, ":0") {
			v.errorf("admin.listen", "admin.listen must differ from server.http")
		}
	}
}

// validateProxies checks trusted_proxies, client_ip_header,
// proxy_protocol and public_https_port.
func (c *Config) validateProxies(v *validator) {
	s := &c.Server
	if _, err := realip.ParseTrusted(s.TrustedProxies); err != nil {
		v.errorf("server.trusted_proxies", "trusted_proxies: %v", err)
	}
	if _, err := realip.ParseHeader(s.ClientIPHeader); err != nil {
		v.errorf("server.client_ip_header", "%v", err)
	}
	for _, name := range s.ProxyProtocol {
		switch {
		case name == "*":
		case name != "http" && name != "https":
			v.errorf("server.proxy_protocol", "proxy_protocol: unknown listener %q (want \"http\" or \"https\")", name)
		case name == "http" && s.HTTP == "", name == "https" && s.HTTPS == "":
			v.errorf("server.proxy_protocol", "proxy_protocol: there is no %s listener (server.%s is not set)", name, name)
		}
	}
	if len(s.ProxyProtocol) > 0 && len(s.TrustedProxies) == 0 {
		v.errorf("server.proxy_protocol", "proxy_protocol needs trusted_proxies: only their connections may carry a PROXY header")
	}
	if p := s.PublicHTTPSPort; p < 0 || p > 65535 {
		v.errorf("server.public_https_port", "public_https_port %d: want a port, 1 to 65535 (0: the HTTPS listener's)", p)
	} else if p != 0 && s.HTTPS == "" {
		v.errorf("server.public_https_port", "public_https_port needs server.https")
	}
}

// publicNames reports whether hosts are all names that a public CA can
// certify: no catch-all, wildcard, address, single label or name under
// a suffix reserved for private networks.
func publicNames(hosts []string) bool {
	if len(hosts) == 0 {
		return false
	}
	for _, h := range hosts {
		if acmeName(h) != "" {
			return false
		}
	}
	return true
}

// acmeName says why an ACME CA cannot certify host ("" if it can).
func acmeName(host string) string {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case h == "*":
		return "the catch-all site has no name to certify"
	case strings.Contains(h, "*"):
		return "ACME here issues exact names only, no wildcards"
	case net.ParseIP(strings.Trim(h, "[]")) != nil:
		return "an address, not a DNS name"
	case !strings.Contains(h, "."):
		return "a single-label name"
	}
	for _, suffix := range []string{".local", ".lan", ".home", ".internal", ".localhost", ".home.arpa", ".test", ".example", ".invalid", ".localdomain"} {
		if strings.HasSuffix(h, suffix) {
			return "a private name (" + suffix + ")"
		}
	}
	return ""
}

// validate checks the ACME account settings.
func (a *ACME) validate(v *validator) {
	if u, err := url.Parse(a.Directory); a.Directory != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
		v.errorf("acme.directory", "acme.directory %q: want the CA's https:// directory URL", a.Directory)
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n<>")) {
		v.errorf("acme.email", "acme.email %q is not an e-mail address", a.Email)
	}
	if (a.EABKeyID == "") != (a.EABHMAC == "") {
		v.errorf("acme.eab_kid", "external account binding needs both eab_kid and eab_hmac")
	} else if a.EABHMAC != "" && a.EABKey() == nil {
		v.errorf("acme.eab_hmac", "eab_hmac: want the base64url key the CA gave")
	}
}

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port or :port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port %q", port)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("invalid address %q: the host must be an IP address or localhost", addr)
	}
	return nil
}

func (s *Site) validate(v *validator, key string, nsites int, hosts map[string]int) {
	s.validateHosts(v, key, nsites, hosts)
	rootOK := s.validateRoot(v, key)
	for _, idx := range s.Index {
		if idx == "" || strings.ContainsAny(idx, "/\\\x00") || strings.HasPrefix(idx, ".") {
			v.errorf(key+".index", "index %q must be a plain file name", idx)
		}
	}
	s.validateErrorPages(v, key, rootOK)
	s.validateEncodings(v, key)
	s.validateLanguages(v, key)
	if err := s.compileRules(key, v.errorf).CheckLanguages(); err != nil {
		v.errorf(key, "%v", err)
	}
	s.validateResponses(v, key, rootOK)
	if strings.ContainsAny(s.CacheControl, "\r\n") {
		v.errorf(key+".cache_control", "cache_control must be one line")
	}
	if strings.ContainsAny(s.RedirectCacheControl, "\r\n") {
		v.errorf(key+".redirect_cache_control", "redirect_cache_control must be one line")
	}
	s.validateTypes(v, key)
}

// validateHosts checks the site's host patterns and claims them in hosts,
// which maps each normalized pattern to the index of its site.
func (s *Site) validateHosts(v *validator, key string, nsites int, hosts map[string]int) {
	if len(s.Hosts) == 0 && nsites > 1 {
		v.errorf(key, "site has no hosts; only a lone site may omit them (use [\"*\"] for the catch-all)")
	}
	if len(s.Hosts) == 0 {
		s.Hosts = []string{"*"}
	}
	for _, h := range s.Hosts {
		p, err := vhost.NormalizePattern(h)
		if err != nil {
			v.errorf(key+".hosts", "%v", err)
			continue
		}
		if prev, dup := hosts[p]; dup {
			v.errorf(key+".hosts", "host %q is already served by site %d", h, prev+1)
			continue
		}
		hosts[p] = siteIndex(key)
	}
}

// validateRoot checks the site's root directory; it reports whether the
// root is a directory here, where its files can be checked.
func (s *Site) validateRoot(v *validator, key string) bool {
	if s.Demo {
		return false
	}
	if s.Deployed() {
		if s.DeployToken != "" {
			if _, err := rewrite.NewSecret(s.DeployToken); err != nil {
				v.errorf(key+".deploy_token", "deploy_token: %v", err)
			}
		}
		if s.Root != "" {
			v.errorf(key+".root", "a site with deploy_token or deploy_client_ca serves what is deployed to it (in server.state_dir/sites/); remove root")
		}
		return false
	}
	root, here := v.local(s.Root)
	switch fi, err := os.Stat(root); {
	case s.Root == "":
		v.errorf(key, "site has no root")
	case !here:
	case err != nil:
		v.errorf(key+".root", "root %q: %v", s.Root, errors.Unwrap(err))
	case !fi.IsDir():
		v.errorf(key+".root", "root %q is not a directory", s.Root)
	default:
		return true
	}
	return false
}

// validateErrorPages checks error_pages and, when the root can be
// checked, that each page is a file in it.
func (s *Site) validateErrorPages(v *validator, key string, rootOK bool) {
	for code, page := range s.ErrorPages {
		n, err := strconv.Atoi(code)
		if err != nil || n < 400 || n > 599 {
			v.errorf(key+".error_pages."+code, "error_pages: %q is not a 4xx or 5xx status", code)
		}
		s.checkPage(v, key+".error_pages."+code, "error_pages: "+code+" page", page, rootOK)
	}
}

// checkPage checks the path of a page sent in place of a file
// (error_pages, a respond page, maintenance_page): a file path starting
// with /, and, when the root can be checked, a regular file in it. The
// page is looked up in the root when it is sent; a missing one would
// give a bare status instead.
func (s *Site) checkPage(v *validator, key, what, page string, rootOK bool) {
	if !strings.HasPrefix(page, "/") || strings.Contains(page, "..") || strings.HasSuffix(page, "/") {
		v.errorf(key, "%s %q must be a file path starting with /", what, page)
	} else if rootOK {
		if fi, err := os.Stat(filepath.Join(s.Root, filepath.FromSlash(page))); err != nil {
			v.errorf(key, "%s %q: no such file in root %q", what, page, s.Root)
		} else if !fi.Mode().IsRegular() {
			v.errorf(key, "%s %q is not a regular file in root %q", what, page, s.Root)
		}
	}
}

// validateResponses checks the fixed responses, the rate limits and the
// maintenance page. cmd/appliance builds the rules themselves (a rate
// limit holds its clients' state); this builds them only to check them.
func (s *Site) validateResponses(v *validator, key string, rootOK bool) {
	compileEach(v.errorf, key, "respond", s.Respond, func(r Respond) (*rewrite.Respond, error) {
		return rewrite.NewRespond(r.Path, r.Status, r.Body, r.Page, time.Duration(r.RetryAfter))
	})
	for i, r := range s.Respond {
		if r.Page != "" && r.Body == "" {
			s.checkPage(v, fmt.Sprintf("%s.respond.%d.page", key, i), "respond page", r.Page, rootOK)
		}
	}
	compileEach(v.errorf, key, "rate_limit", s.RateLimits, func(l RateLimit) (*rewrite.RateLimit, error) {
		return rewrite.NewRateLimit(l.Path, l.Rate, l.Burst, 1)
	})
	if s.MaintenancePage != "" {
		s.checkPage(v, key+".maintenance_page", "maintenance_page", s.MaintenancePage, rootOK)
	}
}

// validateEncodings checks that encodings names known codings once each.
func (s *Site) validateEncodings(v *validator, key string) {
	if s.Encodings == nil {
		return
	}
	seen := map[compress.Coding]bool{}
	for _, name := range *s.Encodings {
		c, ok := compress.Parse(name)
		switch {
		case !ok || c == compress.Identity:
			v.errorf(key+".encodings", "encodings: unknown coding %q (want zstd, br, gzip or deflate)", name)
		case seen[c]:
			v.errorf(key+".encodings", "encodings: %q listed twice", name)
		}
		seen[c] = true
	}
}

// validateLanguages checks languages and default_language.
func (s *Site) validateLanguages(v *validator, key string) {
	seen := map[string]bool{}
	for _, tag := range s.Languages {
		lower := strings.ToLower(tag)
		switch {
		case !language.Valid(tag):
			v.errorf(key+".languages", "languages: %q is not a language tag (like de, en, pt-BR)", tag)
		case seen[lower]:
			v.errorf(key+".languages", "languages: %q listed twice", tag)
		case s.Sidecars() && slices.ContainsFunc(s.Codings(), func(c compress.Coding) bool { return "."+lower == c.Sidecar() }):
			v.errorf(key+".languages", "languages: %q is also the suffix of precompressed sidecars (app.js.%s); set precompressed = false to offer it", tag, lower)
		}
		seen[lower] = true
	}
	if len(s.Languages) > language.MaxOffered {
		v.errorf(key+".languages", "languages: %d listed, at most %d", len(s.Languages), language.MaxOffered)
	}
	switch {
	case s.DefaultLanguage != "" && len(s.Languages) == 0:
		v.errorf(key+".default_language", "default_language %q needs languages, the list of the site's languages", s.DefaultLanguage)
	case s.DefaultLanguage != "" && !seen[strings.ToLower(s.DefaultLanguage)]:
		v.errorf(key+".default_language", "default_language %q is not one of languages %q", s.DefaultLanguage, s.Languages)
	}
}

// validateTypes checks the site's extension to media type map.
func (s *Site) validateTypes(v *validator, key string) {
	for ext, t := range s.Types {
		if !strings.HasPrefix(ext, ".") || strings.Contains(ext[1:], ".") {
			v.errorf(key+".types."+ext, "types: %q must be an extension like \".ext\"", ext)
		}
		if !strings.Contains(t, "/") || strings.ContainsAny(t, "\r\n") {
			v.errorf(key+".types."+ext, "types: %q is not a media type", t)
		}
	}
}

// validateTLS checks the site's certificate settings; the files they
// name are loaded by whoever serves the site.
func (s *Site) validateTLS(v *validator, key string, https bool) {
	switch s.TLS {
	case "off":
		if s.ClientCA != "" {
			v.errorf(key+".client_ca", "client_ca needs a TLS site")
		}
		if s.DeployClientCA != "" {
			v.errorf(key+".deploy_client_ca", "deploy_client_ca needs a TLS site: the certificate comes in the TLS handshake")
		}
		return
	case "manual", "local":
	case "acme":
		for _, h := range s.Hosts {
			if why := acmeName(h); why != "" && !strings.HasPrefix(why, "a private name") {
				v.errorf(key+".hosts", "host %q cannot have an ACME certificate: %s; use tls = \"manual\" (a wildcard certificate from files) or \"local\" (the private CA)", h, why)
			}
		}
	default:
		v.errorf(key+".tls", "tls %q: want acme, manual, local or off", s.TLS)
		return
	}
	if !https {
		v.errorf(key+".tls", "tls = %q needs server.https", s.TLS)
	}
	if s.ClientCA != "" && !s.RedirectsToHTTPS() {
		// Plain HTTP has no client certificate to check.
		v.errorf(key+".https_redirect", "https_redirect = false would serve a client_ca site over plain HTTP, without client certificates")
	}
	if s.HSTS != "off" && (!strings.HasPrefix(s.HSTS, "max-age=") || strings.ContainsAny(s.HSTS, "\r\n")) {
		v.errorf(key+".hsts", "hsts %q: want \"max-age=SECONDS[; includeSubDomains][; preload]\" or \"off\"", s.HSTS)
	}
	s.validateManual(v, key)
}

// validateManual checks that a manual site, and only it, has cert and
// key.
func (s *Site) validateManual(v *validator, key string) {
	if s.TLS != "manual" {
		if s.Cert != "" || s.Key != "" {
			v.errorf(key+".cert", "cert and key are for tls = \"manual\"")
		}
		return
	}
	if s.Cert == "" || s.Key == "" {
		v.errorf(key+".tls", "tls = \"manual\" needs cert and key files")
	}
}

// Rules returns the site's rules compiled (see package rewrite), which
// Parse has checked that they are.
func (s *Site) Rules() rewrite.Rules {
	return s.compileRules("", func(string, string, ...any) {})
}

// compileRules compiles the site's rules, telling errorf each problem
// with the key of its rule ("site.0.redirect.1"; key is the site's).
func (s *Site) compileRules(key string, errorf func(key, format string, args ...any)) rewrite.Rules {
	var hosts []string
	for _, h := range s.Hosts {
		hosts = append(hosts, vhost.Normalize(h))
	}
	r := rewrite.Rules{
		RedirectTo:      parsePolicy(errorf, key+".redirect_to", rewrite.ParseRedirectTo, s.RedirectTo),
		TrailingSlash:   parsePolicy(errorf, key+".trailing_slash", rewrite.ParseTrailingSlash, s.TrailingSlash),
		Fallback:        parsePolicy(errorf, key+".fallback", rewrite.ParseFallback, s.Fallback),
		SecurityHeaders: parsePolicy(errorf, key+".security_headers", rewrite.ParseSecurityPreset, s.SecurityHeaders),

		RedirectCacheControl: s.RedirectCacheControl,
	}
	r.Redirects = compileEach(errorf, key, "redirect", s.Redirects, func(rd Redirect) (*rewrite.Redirect, error) {
		return rewrite.NewRedirect(rd.From, rd.To, rd.Status, rd.cond(), hosts)
	})
	r.Rewrites = compileEach(errorf, key, "rewrite", s.Rewrites, func(rw Rewrite) (*rewrite.Rewrite, error) {
		return rewrite.NewRewrite(rw.From, rw.To, rw.Last, rw.cond())
	})
	r.Headers = compileEach(errorf, key, "headers", s.Headers, func(h Headers) (*rewrite.Headers, error) {
		return rewrite.NewHeaders(h.Path, h.Match, h.Set, h.Remove)
	})
	r.Auth = compileEach(errorf, key, "auth", s.Auth, func(a Auth) (*rewrite.Auth, error) {
		return rewrite.NewAuth(a.Path, a.Realm, a.Users)
	})
	r.Access = compileEach(errorf, key, "access", s.Access, func(a Access) (*rewrite.Access, error) {
		return rewrite.NewAccess(a.Path, a.Allow, a.Deny)
	})
	r.CORS = compileEach(errorf, key, "cors", s.CORS, func(c CORS) (*rewrite.CORS, error) {
		return rewrite.NewCORS(c.Path, c.Origins, c.MaxAge)
	})
	return r
}

// parsePolicy parses one of the site-wide rule settings (trailing_slash
// ...), reporting a failure at its line.
func parsePolicy[T any](errorf func(key, format string, args ...any), key string, parse func(string) (T, error), s string) T {
	t, err := parse(s)
	if err != nil {
		errorf(key, "%v", err)
	}
	return t
}

// compileEach compiles the rules of one kind ([[site.redirect]] ...),
// reporting each failure at its rule's line, named by its kind once:
// rewrite's own errors often start with it ("respond status 204 ...").
func compileEach[S, R any](errorf func(key, format string, args ...any), key, kind string, specs []S, compile func(S) (R, error)) []R {
	var out []R
	for i, spec := range specs {
		r, err := compile(spec)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, kind+" ") && !strings.HasPrefix(msg, kind+":") {
				msg = kind + ": " + msg
			}
			errorf(fmt.Sprintf("%s.%s.%d", key, kind, i), "%s", msg)
			continue
		}
		out = append(out, r)
	}
	return out
}

func siteIndex(key string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(key, "site."))
	return n
}
