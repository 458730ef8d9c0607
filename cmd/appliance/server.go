package main

import (
	"context"
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
	log     *slog.Logger
	access  *accesslog.Logger // nil without an access log
	metrics *metrics.Registry // nil without an admin listener
	cfg     *config.Config
	cache   *serve.Cache
	handler atomic.Pointer[http.Handler]
	closers []io.Closer
	http    *http.Server // the requests the fast path hands over (all, with fast_http1 off)
	fast    *h1.Server   // accepts every connection: limits, fast path, shutdown

	ln   atomic.Pointer[net.Listener] // the plain-HTTP listener now
	errc chan error                   // a listener that failed
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
	h, closers, err := buildSites(cfg, s.cache, s.access, s.metrics)
	if err != nil {
		return nil, err
	}
	s.handler.Store(&h)
	s.closers = closers
	sc := cfg.Server
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: time.Duration(sc.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(sc.ReadTimeout),
		WriteTimeout:      time.Duration(sc.WriteTimeout),
		IdleTimeout:       time.Duration(sc.IdleTimeout),
		MaxHeaderBytes:    int(sc.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.fast = &h1.Server{
		Handler:           s.http.Handler,
		Fallback:          s.http,
		HandOffAll:        !sc.Fast(),
		ReadHeaderTimeout: s.http.ReadHeaderTimeout,
		IdleTimeout:       s.http.IdleTimeout,
		WriteTimeout:      s.http.WriteTimeout,
		MaxHeaderBytes:    s.http.MaxHeaderBytes,
		ErrorLog:          s.http.ErrorLog,
		MaxConns:          sc.MaxConnections,
		MaxConnsPerIP:     sc.MaxConnectionsPerIP,
	}
	return s, nil
}

func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.handler.Load()).ServeHTTP(w, r)
}

func newCache(cfg *config.Config) *serve.Cache {
	return serve.NewCache(serve.CacheOptions{
		MaxBytes:         int64(cfg.Cache.MaxBytes),
		MaxFileBytes:     int64(cfg.Cache.MaxFileBytes),
		Revalidate:       time.Duration(cfg.Cache.Revalidate),
		MaxCompressBytes: int64(cfg.Cache.MaxCompressBytes),
	})
}

// buildSites opens every site's root and routes hosts to its handler.
func buildSites(cfg *config.Config, cache *serve.Cache, access *accesslog.Logger, reg *metrics.Registry) (http.Handler, []io.Closer, error) {
	rt := vhost.New()
	var closers []io.Closer
	fail := func(err error) (http.Handler, []io.Closer, error) {
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
		for _, host := range hosts {
			if err := rt.Add(host, siteHandler); err != nil {
				return fail(fmt.Errorf("site %d: %w", i+1, err))
			}
		}
	}
	return rt, closers, nil
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
	ln := passed["http"]
	how := "socket activation"
	if ln == nil {
		how = "bound"
		if ln, err = net.Listen("tcp", s.cfg.Server.HTTP); err != nil {
			return err
		}
	}
	for name, l := range passed {
		if name != "http" {
			s.log.Warn("ignoring a passed socket this configuration has no listener for", "name", name)
			l.Close()
		}
	}
	s.log.Info("serving", "sites", len(s.cfg.Sites), "http", "http://"+ln.Addr().String(), "listener", how)
	s.errc = make(chan error, 1)
	s.listen(ln)
	if pf := s.cfg.Server.PIDFile; pf != "" {
		if err := os.WriteFile(pf, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			s.fast.Close()
			return fmt.Errorf("pid_file: %w", err)
		}
		defer os.Remove(pf)
	}
	status := func() string {
		return fmt.Sprintf("STATUS=serving %d site(s) on http://%s", len(s.cfg.Sites), (*s.ln.Load()).Addr())
	}
	if s.cfg.Admin.Listen != "" {
		stopAdmin, err := s.serveAdmin()
		if err != nil {
			s.fast.Close()
			return err
		}
		defer stopAdmin()
	}
	notify(s.log, daemon.SdNotifyReady+"\n"+status())
	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go watchdog(wctx, s.log, s.addr)
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
			notify(s.log, daemon.SdNotifyReady+"\n"+status())
		case <-ctx.Done():
			notify(s.log, daemon.SdNotifyStopping)
			s.log.Info("shutting down", "grace", time.Duration(s.cfg.Server.ShutdownTimeout))
			sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Server.ShutdownTimeout))
			defer cancel()
			err := s.fast.Shutdown(sctx) // and the fallback server with it
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

// addr is where the plain-HTTP listener is now, for health probes.
func (s *server) addr() net.Addr { return (*s.ln.Load()).Addr() }

// reload swaps in a new site set; a config that fails to load or open is
// refused and the running one stays.
func (s *server) reload(load func() (*config.Config, error)) {
	cfg, err := load()
	if err != nil {
		s.log.Error("reload refused; keeping the running configuration", "err", err)
		return
	}
	var newLn net.Listener
	if cfg.Server.HTTP != s.cfg.Server.HTTP {
		if newLn, err = net.Listen("tcp", cfg.Server.HTTP); err != nil {
			s.log.Error("reload refused; keeping the running configuration", "err", fmt.Errorf("server.http: %w", err))
			return
		}
	}
	old := s.cfg.Server
	old.HTTP = cfg.Server.HTTP
	if cfg.Server != old {
		s.log.Warn("reload: [server] changes other than http need a restart; sites and the listener are reloaded")
	}
	if cfg.Server.AccessLog != s.cfg.Server.AccessLog || cfg.Server.AccessLogFormat != s.cfg.Server.AccessLogFormat {
		s.log.Warn("reload: access log changes need a restart")
	}
	if cfg.Admin != s.cfg.Admin {
		s.log.Warn("reload: [admin] changes need a restart")
	}
	h, closers, err := buildSites(cfg, s.cache, s.access, s.metrics)
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
	s.handler.Store(&h)
	// The old roots are not closed: requests may still be using them, and
	// os.Root closes itself once the garbage collector finds it unused.
	s.closers, s.cfg = closers, cfg
	s.cache.Purge()
	s.log.Info("reloaded", "sites", len(cfg.Sites))
}
