package main

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"appliance/accesslog"
	"appliance/certs"
	"appliance/compress"
	"appliance/config"
	"appliance/h1"
	"appliance/metrics"
	"appliance/rewrite"
	"appliance/serve"
	"appliance/vhost"
)

//go:embed demo
var demoFiles embed.FS

// server owns the listeners and the current site set, which a reload
// swaps atomically: a request sees the old sites or the new, never half.
type server struct {
	log      *slog.Logger
	access   *accesslog.Logger // nil without an access log
	metrics  *metrics.Registry // nil without an admin listener
	cfg      *config.Config
	cache    *serve.Cache
	sites    atomic.Pointer[siteSet]
	tlsBase  *tls.Config    // the HTTPS listener's configuration, which mTLS sites derive from
	localCA  *certs.LocalCA // nil unless a site has tls = "local"
	acme     *certs.ACME    // nil unless a site has tls = "acme"
	acmeHTTP http.Handler   // its HTTP-01 responder
	closers  []io.Closer
	http     *http.Server // the requests the fast path hands over (all, with fast_http1 off)
	fast     *h1.Server   // accepts every plain connection: limits, fast path, shutdown
	https    *http.Server // HTTP/2, and what the HTTPS fast path hands over
	tls      *h1.Server   // accepts every HTTPS connection

	ln        atomic.Pointer[net.Listener] // the plain-HTTP listener now (nil: none)
	httpsPort atomic.Value                 // string: the HTTPS port, for redirects
	tlsAddr   atomic.Pointer[net.Addr]     // the HTTPS listener's address (nil: none yet)
	errc      chan error                   // a listener that failed
}

// siteSet is one configuration's sites, swapped whole on reload.
type siteSet struct {
	plain http.Handler    // the plain-HTTP listener's router
	https http.Handler    // the HTTPS listener's router
	certs *certs.Selector // certificates by SNI
	acme  []string        // the names of tls = "acme" sites
	// manual maps the hosts of tls = "manual" sites to their certificates.
	manual map[string]*certs.Manual
	sites  int
	local  int // sites with tls = "local"
}

// status is the STATUS= line for systemd: sites, listeners and
// certificates.
func (s *server) status() string {
	set := s.sites.Load()
	st := fmt.Sprintf("STATUS=serving %d site(s)", set.sites)
	if p := s.ln.Load(); p != nil {
		st += fmt.Sprintf(" on http://%s", (*p).Addr())
	}
	if a := s.tlsAddr.Load(); a != nil {
		st += fmt.Sprintf(" and https://%s", *a)
		var parts []string
		if s.acme != nil && len(set.acme) > 0 {
			pending := 0
			for _, c := range s.acme.Certificates() {
				if c.NotAfter.IsZero() {
					pending++
				}
			}
			p := fmt.Sprintf("%d acme", len(set.acme))
			if pending > 0 {
				p += fmt.Sprintf(" (%d pending)", pending)
			}
			parts = append(parts, p)
		}
		if len(set.manual) > 0 {
			parts = append(parts, fmt.Sprintf("%d manual", len(set.manual)))
		}
		if set.local > 0 {
			parts = append(parts, fmt.Sprintf("%d local", set.local))
		}
		if len(parts) > 0 {
			st += "; certificates: " + strings.Join(parts, ", ")
		}
	}
	return st
}

func newServer(cfg *config.Config, log *slog.Logger) (*server, error) {
	s := &server{log: log, cfg: cfg, cache: newCache(cfg)}
	if path := cfg.Server.AccessLog; path != "" {
		format, _ := accesslog.ParseFormat(cfg.Server.AccessLogFormat)
		a, err := accesslog.Open(path, format, 0)
		if err != nil {
			return nil, err
		}
		s.access = a
	}
	if cfg.Admin.Listen != "" {
		s.metrics = metrics.New()
	}
	if err := s.openCA(cfg); err != nil {
		return nil, err
	}
	s.tlsBase = s.tlsConfig()
	set, closers, err := s.buildSites(cfg)
	if err != nil {
		return nil, err
	}
	s.sites.Store(set)
	if s.acme != nil {
		s.acme.SetHosts(set.acme)
	}
	s.closers = closers
	sc := cfg.Server
	s.http = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.sites.Load().plain.ServeHTTP(w, r) }),
		ReadHeaderTimeout: time.Duration(sc.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(sc.ReadTimeout),
		WriteTimeout:      time.Duration(sc.WriteTimeout),
		IdleTimeout:       time.Duration(sc.IdleTimeout),
		MaxHeaderBytes:    int(sc.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.fast = transport(sc, s.http, nil)
	if sc.HTTPS != "" {
		s.https = &http.Server{
			Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.sites.Load().https.ServeHTTP(w, r) }),
			ReadHeaderTimeout: s.http.ReadHeaderTimeout,
			ReadTimeout:       s.http.ReadTimeout,
			WriteTimeout:      s.http.WriteTimeout,
			IdleTimeout:       s.http.IdleTimeout,
			MaxHeaderBytes:    s.http.MaxHeaderBytes,
			ErrorLog:          s.http.ErrorLog,
			// HTTP/2 frames from clients stay at the protocol's default
			// size: a static server receives only small requests, and a
			// larger frame is refused with FRAME_SIZE_ERROR (RFC 9113 4.2).
			HTTP2: &http.HTTP2Config{MaxReadFrameSize: 16 << 10},
		}
		s.tls = transport(sc, s.https, s.tlsBase)
	}
	return s, nil
}

// transport is the h1 server that accepts a listener's connections and
// hands what it does not serve itself to fallback, which has the same
// handler and limits.
func transport(sc config.Server, fallback *http.Server, tc *tls.Config) *h1.Server {
	return &h1.Server{
		Handler:           fallback.Handler,
		Fallback:          fallback,
		TLSConfig:         tc,
		HandOffAll:        !sc.Fast(),
		ReadHeaderTimeout: fallback.ReadHeaderTimeout,
		IdleTimeout:       fallback.IdleTimeout,
		WriteTimeout:      fallback.WriteTimeout,
		MaxHeaderBytes:    fallback.MaxHeaderBytes,
		ErrorLog:          fallback.ErrorLog,
		MaxConns:          sc.MaxConnections,
		MaxConnsPerIP:     sc.MaxConnectionsPerIP,
	}
}

// openCA opens the local CA and the ACME account once some site needs
// them; they stay across reloads.
func (s *server) openCA(cfg *config.Config) error {
	for i := range cfg.Sites {
		switch {
		case cfg.Sites[i].TLS == "local" && s.localCA == nil:
			ca, err := openLocalCA(cfg)
			if err != nil {
				return err
			}
			s.localCA = ca
		case cfg.Sites[i].TLS == "acme" && s.acme == nil:
			a, err := openACME(cfg, s.log, func(string) { notify(s.log, s.status()) })
			if err != nil {
				return fmt.Errorf("acme: %w", err)
			}
			s.acme, s.acmeHTTP = a, a.HTTPHandler()
		}
	}
	return nil
}

func newCache(cfg *config.Config) *serve.Cache {
	return serve.NewCache(serve.CacheOptions{
		MaxBytes:         int64(cfg.Cache.MaxBytes),
		MaxFileBytes:     int64(cfg.Cache.MaxFileBytes),
		Revalidate:       time.Duration(cfg.Cache.Revalidate),
		MaxCompressBytes: int64(cfg.Cache.MaxCompressBytes),
	})
}

// buildSites opens every site's root and routes hosts to its handler, on
// the plain listener and, for TLS sites, on the HTTPS one.
func (s *server) buildSites(cfg *config.Config) (*siteSet, []io.Closer, error) {
	cache, access, reg := s.cache, s.access, s.metrics
	plain, secure := vhost.New(), vhost.New()
	selector := certs.NewSelector()
	var closers []io.Closer
	var acmeNames []string
	manual := map[string]*certs.Manual{}
	local := 0
	fail := func(err error) (*siteSet, []io.Closer, error) {
		for _, c := range closers {
			c.Close()
		}
		return nil, nil, err
	}
	for i := range cfg.Sites {
		site := &cfg.Sites[i]
		var fsys fs.FS
		if site.Demo {
			sub, err := fs.Sub(demoFiles, "demo")
			if err != nil {
				return fail(err)
			}
			fsys = sub
		} else {
			d, err := serve.OpenDir(site.Root, time.Duration(cfg.Cache.Revalidate))
			if err != nil {
				return fail(fmt.Errorf("site %d: %w", i+1, err))
			}
			closers = append(closers, d)
			fsys = d
		}
		types := map[string]string{}
		for ext, t := range site.Types {
			types[strings.ToLower(ext)] = t
		}
		h := serve.New(fsys, serve.Options{
			Index:            site.Index,
			ErrorPages:       site.Pages(),
			CleanURLs:        site.CleanURLs,
			ListDirectories:  site.DirectoryListing,
			CacheControl:     site.CacheControl,
			RefuseSymlinks:   !site.Follow(),
			Types:            types,
			WriteTimeout:     time.Duration(cfg.Server.WriteTimeout),
			Encodings:        compress.SetOf(append(site.Codings(), compress.Identity)...),
			CompressMinBytes: int64(site.CompressMinBytes),
			NoSidecars:       !site.Sidecars(),
		}, cache)
		siteHandler, err := rewrite.New(site.Rules, h.Exists, h)
		if err != nil {
			return fail(fmt.Errorf("site %d: %w", i+1, err))
		}
		hosts := site.Hosts
		if len(hosts) == 0 {
			hosts = []string{"*"}
		}
		siteHandler = observe(hosts[0], siteHandler, access, site.Logged(), reg)
		plainHandler := siteHandler
		if tlsSite(site) {
			// Plain HTTP: ACME's HTTP-01 challenges (or, for other TLS
			// sites, whatever the root has there), then the redirect to
			// HTTPS unless the site serves plain HTTP too.
			rest := siteHandler
			if site.RedirectsToHTTPS() {
				rest = toHTTPS(&s.httpsPort)
				plainHandler = acmeChallenges(siteHandler, rest)
			}
			var src certs.Source = s.localCA
			switch site.TLS {
			case "local":
				local += len(hosts)
			case "manual":
				src = site.Manual
				site.Manual.OnError = func(err error) { s.log.Error("reloading a certificate failed; keeping the old one", "err", err) }
				for _, h := range hosts {
					manual[h] = site.Manual
				}
			case "acme":
				src = s.acme
				plainHandler = acmeChallenges(s.acmeHTTP, rest)
				acmeNames = append(acmeNames, hosts...)
			}
			for _, host := range hosts {
				if err := secure.Add(host, hsts(site.HSTS, siteHandler)); err != nil {
					return fail(fmt.Errorf("site %d: %w", i+1, err))
				}
				selector.Add(host, i, src, site.ClientCAs, s.tlsBase)
			}
		}
		for _, host := range hosts {
			if err := plain.Add(host, plainHandler); err != nil {
				return fail(fmt.Errorf("site %d: %w", i+1, err))
			}
		}
	}
	return &siteSet{plain: plain, https: misdirected(selector, secure), certs: selector, acme: acmeNames, manual: manual, sites: len(cfg.Sites), local: local}, closers, nil
}

// observe wraps a site's handler for the access log and the metrics,
// once for both, or not at all when neither is on.
func observe(site string, h http.Handler, access *accesslog.Logger, logged bool, reg *metrics.Registry) http.Handler {
	if access == nil || !logged {
		access = nil
	}
	if access == nil && reg == nil {
		return h
	}
	var m *metrics.Site
	if reg != nil {
		m = reg.Site(site)
	}
	return accesslog.Observe(h, func(r *http.Request, rec *accesslog.Recorder, start time.Time) {
		if access != nil {
			access.Log(site, r, rec, start)
		}
		if m != nil {
			m.Observe(rec.Status, rec.Bytes, time.Since(start))
		}
	})
}

// run serves until ctx ends, reloading the sites on every value from hup
// and reopening the access log on every value from usr1.
func (s *server) run(ctx context.Context, hup, usr1 <-chan os.Signal, reload func() (*config.Config, error)) error {
	passed, err := activated()
	if err != nil {
		return err
	}
	// Each listener is passed by systemd or bound here.
	bind := func(name, addr string) (net.Listener, string, error) {
		if ln := passed[name]; ln != nil {
			delete(passed, name)
			return ln, "socket activation", nil
		}
		if addr == "" {
			return nil, "", nil
		}
		ln, err := net.Listen("tcp", addr)
		return ln, "bound", err
	}
	ln, how, err := bind("http", s.cfg.Server.HTTP)
	if err != nil {
		return err
	}
	var tlsLn net.Listener
	if s.tls != nil {
		var howTLS string
		if tlsLn, howTLS, err = bind("https", s.cfg.Server.HTTPS); err != nil {
			if ln != nil {
				ln.Close()
			}
			return err
		}
		_, port, _ := net.SplitHostPort(tlsLn.Addr().String())
		s.httpsPort.Store(port)
		if how == "" {
			how = howTLS
		}
	}
	for name, l := range passed {
		s.log.Warn("ignoring a passed socket this configuration has no listener for", "name", name)
		l.Close()
	}
	attrs := []any{"sites", len(s.cfg.Sites), "listener", how}
	if ln != nil {
		attrs = append(attrs, "http", "http://"+ln.Addr().String())
	}
	if tlsLn != nil {
		attrs = append(attrs, "https", "https://"+tlsLn.Addr().String())
	}
	s.log.Info("serving", attrs...)
	s.errc = make(chan error, 2)
	if ln != nil {
		s.listen(ln)
	}
	if tlsLn != nil {
		go func() {
			if err := s.tls.Serve(tlsLn); !errors.Is(err, http.ErrServerClosed) {
				s.errc <- err
			}
		}()
	}
	if s.acme != nil {
		s.acme.Start() // the listeners are up for the CA's challenges
	}
	defer func() {
		if s.acme != nil {
			s.acme.Close()
		}
	}()
	if pf := s.cfg.Server.PIDFile; pf != "" {
		if err := os.WriteFile(pf, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			s.fast.Close()
			return fmt.Errorf("pid_file: %w", err)
		}
		defer os.Remove(pf)
	}
	if tlsLn != nil {
		a := tlsLn.Addr()
		s.tlsAddr.Store(&a)
	}
	if s.cfg.Admin.Listen != "" {
		stopAdmin, err := s.serveAdmin()
		if err != nil {
			s.fast.Close()
			return err
		}
		defer stopAdmin()
	}
	notify(s.log, daemon.SdNotifyReady+"\n"+s.status())
	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go watchdog(wctx, s.log, s.probeTarget)
	for {
		select {
		case err := <-s.errc:
			return err
		case <-usr1:
			if s.access != nil {
				if err := s.access.Reopen(); err != nil {
					s.log.Error("reopening the access log", "err", err)
				} else {
					s.log.Info("access log reopened", "dropped_lines", s.access.Dropped())
				}
			}
		case <-hup:
			notify(s.log, daemon.SdNotifyReloading+"\n"+daemon.SdNotifyMonotonicUsec())
			s.reload(reload)
			notify(s.log, daemon.SdNotifyReady+"\n"+s.status())
		case <-ctx.Done():
			notify(s.log, daemon.SdNotifyStopping)
			s.log.Info("shutting down", "grace", time.Duration(s.cfg.Server.ShutdownTimeout))
			sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Server.ShutdownTimeout))
			defer cancel()
			var tlsErr error
			tlsDone := make(chan struct{})
			go func() {
				if s.tls != nil {
					tlsErr = s.tls.Shutdown(sctx)
				}
				close(tlsDone)
			}()
			err := s.fast.Shutdown(sctx) // and the fallback server with it
			<-tlsDone
			if err == nil {
				err = tlsErr
			}
			for _, c := range s.closers {
				c.Close()
			}
			if s.access != nil {
				s.access.Close()
				if d := s.access.Dropped(); d > 0 {
					s.log.Warn("access log lines dropped while the writer was behind", "dropped_lines", d)
				}
			}
			if errors.Is(err, context.DeadlineExceeded) {
				s.log.Warn("grace period over; closing remaining connections")
				if s.tls != nil {
					s.tls.Close()
				}
				return s.fast.Close()
			}
			return err
		}
	}
}

// listen makes ln the plain-HTTP listener.
func (s *server) listen(ln net.Listener) {
	s.ln.Store(&ln)
	go func() {
		if err := s.fast.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
	}()
}

// probeTarget is the listener health probes use: the plain-HTTP one
// when there is one, else the HTTPS one (secure); nil before either.
func (s *server) probeTarget() (addr net.Addr, secure bool) {
	if p := s.ln.Load(); p != nil {
		return (*p).Addr(), false
	}
	if a := s.tlsAddr.Load(); a != nil {
		return *a, true
	}
	return nil, false
}

// reload swaps in a new site set; a config that fails to load or open is
// refused and the running one stays.
func (s *server) reload(load func() (*config.Config, error)) {
	cfg, err := load()
	if err != nil {
		s.log.Error("reload refused; keeping the running configuration", "err", err)
		return
	}
	var newLn net.Listener
	if (cfg.Server.HTTPS == "") != (s.cfg.Server.HTTPS == "") || (cfg.Server.HTTP == "") != (s.cfg.Server.HTTP == "") {
		s.log.Error("reload refused; keeping the running configuration", "err", "turning a listener on or off needs a restart")
		return
	}
	if cfg.Server.HTTP != s.cfg.Server.HTTP {
		if newLn, err = net.Listen("tcp", cfg.Server.HTTP); err != nil {
			s.log.Error("reload refused; keeping the running configuration", "err", fmt.Errorf("server.http: %w", err))
			return
		}
	}
	old := s.cfg.Server
	old.HTTP = cfg.Server.HTTP
	if cfg.Server != old {
		// Including server.https: the HTTPS socket stays where it is.
		s.log.Warn("reload: [server] changes other than http need a restart; sites and the listener are reloaded")
	}
	if cfg.Server.AccessLog != s.cfg.Server.AccessLog || cfg.Server.AccessLogFormat != s.cfg.Server.AccessLogFormat {
		s.log.Warn("reload: access log changes need a restart")
	}
	if cfg.Admin != s.cfg.Admin {
		s.log.Warn("reload: [admin] changes need a restart")
	}
	if s.acme != nil && !cfg.ACME.Same(s.cfg.ACME) {
		s.log.Warn("reload: [acme] changes need a restart; the running account stays")
	}
	if err := s.openCA(cfg); err != nil {
		s.log.Error("reload refused; keeping the running configuration", "err", err)
		return
	}
	set, closers, err := s.buildSites(cfg)
	if err != nil {
		if newLn != nil {
			newLn.Close()
		}
		s.log.Error("reload refused; keeping the running configuration", "err", err)
		return
	}
	if newLn != nil {
		// Connections accepted on the old address finish there.
		oldLn := *s.ln.Load()
		s.listen(newLn)
		s.fast.Retire(oldLn)
		s.log.Info("listener moved", "http", "http://"+newLn.Addr().String())
	}
	s.sites.Store(set)
	if s.acme != nil {
		s.acme.SetHosts(set.acme)
		s.acme.Start() // if this reload brought the first ACME site
	}
	// The old roots are not closed: requests may still be using them, and
	// os.Root closes itself once the garbage collector finds it unused.
	s.closers, s.cfg = closers, cfg
	s.cache.Purge()
	s.log.Info("reloaded", "sites", len(cfg.Sites))
}
