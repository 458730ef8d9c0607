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
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"appliance/accesslog"
	"appliance/certs"
	"appliance/compress"
	"appliance/config"
	"appliance/deploy"
	"appliance/h1"
	"appliance/h2"
	"appliance/metrics"
	"appliance/piupdate"
	"appliance/realip"
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
	notices *notices          // what clients cause, rate-limited
	recent  *logRing          // the end of log, for the admin listener's /log
	access  *accesslog.Logger // nil without an access log
	metrics *metrics.Registry // nil without an admin listener
	cfg     *config.Config
	cache   *serve.Cache
	sites   atomic.Pointer[siteSet]
	tlsBase *tls.Config    // the HTTPS listener's configuration, which mTLS sites derive from
	localCA *certs.LocalCA // nil unless a site has tls = "local"
	acme    *certs.ACME    // nil unless a site has tls = "acme"
	closers []io.Closer
	// Each listener's connections are accepted by an h1 server (limits,
	// fast path, shutdown), which hands what it does not serve itself to
	// a net/http server, its fallback.
	plainAccept   *h1.Server   // accepts every plain connection
	plainFallback *http.Server // the plain requests the fast path hands over (all, with fast_http1 off)
	httpsAccept   *h1.Server   // accepts every HTTPS connection (nil: no HTTPS listener)
	httpsFallback *http.Server // HTTP/2, and what the HTTPS fast path hands over

	ln        atomic.Pointer[net.Listener] // the plain-HTTP listener now (nil: none)
	httpsPort atomic.Value                 // string: the HTTPS port, for redirects
	tlsAddr   atomic.Pointer[net.Addr]     // the HTTPS listener's address (nil: none yet)
	errc      chan error                   // a listener that failed
	// maintenance is on while the switch file is in state_dir
	// (maintenance.go): every site answers 503.
	maintenance atomic.Bool
}

// authorities are the certificate sources the sites draw on: the
// server's localCA and acme, or a reload's before it commits.
type authorities struct {
	localCA *certs.LocalCA // nil unless a site has tls = "local"
	acme    *certs.ACME    // nil unless a site has tls = "acme"
}

// siteSet is one configuration's sites, swapped whole on reload.
type siteSet struct {
	plain http.Handler    // the plain-HTTP listener's router
	https http.Handler    // the HTTPS listener's router
	certs *certs.Selector // certificates by SNI
	acme  []string        // the names of tls = "acme" sites
	// account is the ACME account these sites use (nil: none); read from
	// here, not from the server, by goroutines other than the one that
	// reloads (systemd status, metrics).
	account *certs.ACME
	// manual maps the hosts of tls = "manual" sites to their certificates.
	manual map[string]*certs.Manual
	sites  int
	local  int                  // sites with tls = "local"
	limits []*rewrite.RateLimit // every site's rate limits, for the metrics
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
		if set.account != nil && len(set.acme) > 0 {
			pending := 0
			for _, c := range set.account.Certificates() {
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
	lv, err := build(cfg)
	if err != nil {
		return nil, err
	}
	log, recent := teeRecent(log)
	s := &server{log: log, recent: recent, notices: newNotices(log), cfg: cfg, cache: newCache(cfg)}
	if path := cfg.Server.AccessLog; path != "" {
		format, _ := accesslog.ParseFormat(cfg.Server.AccessLogFormat)
		a, err := accesslog.Open(path, format, 0, accesslog.Roll{MaxBytes: int64(cfg.Server.AccessLogMaxBytes), Keep: cfg.Server.AccessLogKeep})
		if err != nil {
			return nil, err
		}
		s.access = a
	}
	if cfg.Admin.Listen != "" {
		s.metrics = metrics.New()
	}
	ca, err := s.openAuthorities(cfg, lv)
	s.storeAuthorities(ca)
	if err != nil {
		return nil, err
	}
	s.tlsBase = s.tlsConfig()
	set, closers, err := s.buildSites(cfg, lv, ca)
	if err != nil {
		return nil, err
	}
	s.sites.Store(set)
	if s.acme != nil {
		s.acme.SetHosts(set.acme)
	}
	s.closers = closers
	sc := cfg.Server
	s.plainFallback = &http.Server{
		Handler:           realClient(lv.trusted, lv.ipHeader, s.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.sites.Load().plain.ServeHTTP(w, r) }))),
		ReadHeaderTimeout: time.Duration(sc.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(sc.ReadTimeout),
		WriteTimeout:      time.Duration(sc.WriteTimeout),
		IdleTimeout:       time.Duration(sc.IdleTimeout),
		MaxHeaderBytes:    int(sc.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// One max_connections for the process: both listeners count against it.
	limits := &h1.Limits{MaxConns: sc.MaxConnections, MaxConnsPerIP: sc.MaxConnectionsPerIP}
	// Heads h1 refuses itself (ambiguous framing) are logged and counted.
	reject := s.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vhost.Error(w, r, http.StatusBadRequest)
	}))
	s.plainAccept = s.newAcceptServer(sc, lv.trusted, s.plainFallback, nil, sc.ProxyProtocol.Has("http"), limits, reject)
	if sc.HTTPS != "" {
		s.httpsFallback = &http.Server{
			Handler:           realClient(lv.trusted, lv.ipHeader, s.observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.sites.Load().https.ServeHTTP(w, r) }))),
			ReadHeaderTimeout: s.plainFallback.ReadHeaderTimeout,
			ReadTimeout:       s.plainFallback.ReadTimeout,
			WriteTimeout:      s.plainFallback.WriteTimeout,
			IdleTimeout:       s.plainFallback.IdleTimeout,
			MaxHeaderBytes:    s.plainFallback.MaxHeaderBytes,
			ErrorLog:          s.plainFallback.ErrorLog,
			// HTTP/2 frames from clients stay at the protocol's default
			// size: a static server receives only small requests, and a
			// larger frame is refused with FRAME_SIZE_ERROR (RFC 9113 4.2).
			HTTP2: &http.HTTP2Config{MaxReadFrameSize: 16 << 10},
		}
		s.httpsAccept = s.newAcceptServer(sc, lv.trusted, s.httpsFallback, s.tlsBase, sc.ProxyProtocol.Has("https"), limits, reject)
		if sc.FastH2() {
			s.httpsAccept.HTTP2 = &h2.Server{
				Handler:           s.httpsAccept.Handler,
				ReadHeaderTimeout: s.httpsFallback.ReadHeaderTimeout,
				IdleTimeout:       s.httpsFallback.IdleTimeout,
				WriteTimeout:      s.httpsFallback.WriteTimeout,
				MaxHeaderBytes:    s.httpsFallback.MaxHeaderBytes,
				ErrorLog:          s.httpsFallback.ErrorLog,
			}
		}
	}
	return s, nil
}

// newAcceptServer returns the h1 server that accepts a listener's
// connections and hands what it does not serve itself to fallback, which
// has the same handler and limits; with proxy, connections from trusted
// proxies may start with a PROXY protocol header. It configures fallback
// for that (h1.Server.ConfigureFallback): from here on, the h1 server
// starts and stops it.
func (s *server) newAcceptServer(sc config.Server, proxies realip.Trusted, fallback *http.Server, tc *tls.Config, proxy bool, limits *h1.Limits, reject http.Handler) *h1.Server {
	var trusted func(netip.Addr) bool
	if len(proxies) > 0 {
		trusted = proxies.Contains
	}
	srv := &h1.Server{
		Trusted:       trusted,
		ProxyProtocol: proxy,
		Refused: func(reason string, peer netip.Addr) {
			s.notices.warn(noticeProxyHeader, "reason", reason, "peer", peer)
		},
		Handler:           fallback.Handler,
		TLSConfig:         tc,
		HandOffAll:        !sc.Fast(),
		ReadHeaderTimeout: fallback.ReadHeaderTimeout,
		IdleTimeout:       fallback.IdleTimeout,
		WriteTimeout:      fallback.WriteTimeout,
		MaxHeaderBytes:    fallback.MaxHeaderBytes,
		ErrorLog:          fallback.ErrorLog,
		Limits:            limits,
		Reject:            reject,
	}
	srv.ConfigureFallback(fallback)
	return srv
}

// openAuthorities returns the authorities cfg's sites need: the
// server's own, with the local CA and the ACME account opened now if
// some site needs one the server lacks. It changes nothing on s: the
// caller stores the result, or gives up and calls release, which it must
// also do on an error (the result then holds what was opened before it).
func (s *server) openAuthorities(cfg *config.Config, lv *live) (authorities, error) {
	ca := s.currentAuthorities()
	for i := range cfg.Sites {
		switch {
		case cfg.Sites[i].TLS == "local" && ca.localCA == nil:
			l, err := openLocalCA(cfg)
			if err != nil {
				return ca, err
			}
			ca.localCA = l
		case cfg.Sites[i].TLS == "acme" && ca.acme == nil:
			a, err := openACME(cfg, lv.acmeRoots, s.log, func(string) { notify(s.log, s.status()) })
			if err != nil {
				return ca, fmt.Errorf("acme: %w", err)
			}
			ca.acme = a
		}
	}
	return ca, nil
}

// currentAuthorities returns the certificate sources the server holds;
// once opened, they stay across reloads.
func (s *server) currentAuthorities() authorities {
	return authorities{localCA: s.localCA, acme: s.acme}
}

func (s *server) storeAuthorities(ca authorities) {
	s.localCA, s.acme = ca.localCA, ca.acme
}

// release closes what openAuthorities opened in ca that the server does
// not hold. The local CA holds nothing open (its files stay for the next use).
func (s *server) release(ca authorities) {
	if ca.acme != nil && ca.acme != s.acme {
		ca.acme.Close()
	}
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
// the plain listener and, for TLS sites, on the HTTPS one, with the
// certificates of ca and what lv holds for the site. On an error it
// closes what it opened.
func (s *server) buildSites(cfg *config.Config, lv *live, ca authorities) (*siteSet, []io.Closer, error) {
	cache := s.cache
	plain, secure := vhost.New(), vhost.New()
	plain.OnUnknown(s.unknownHost)
	secure.OnUnknown(s.unknownHost)
	selector := certs.NewSelector()
	var closers []io.Closer
	var acmeNames []string
	manual := map[string]*certs.Manual{}
	local := 0
	var limits []*rewrite.RateLimit
	fail := func(err error) (*siteSet, []io.Closer, error) {
		for _, c := range closers {
			c.Close()
		}
		return nil, nil, err
	}
	for i := range cfg.Sites {
		site, ls := &cfg.Sites[i], &lv.sites[i]
		fsys, dir, deployHandler, err := openSiteRoot(cfg, site, ls, i)
		if err != nil {
			return fail(err)
		}
		if dir != nil {
			closers = append(closers, dir)
		}
		h := serve.New(fsys, siteServeOptions(cfg, site), cache)
		if deployHandler != nil {
			deployHandler.Log = s.log.With("site", site.Hosts[0])
			// A new release shows at once: the root is looked at again
			// and the site's cached entries of the old one are dropped.
			deployHandler.Activated = func() { dir.Recheck(); h.Purge() }
		}
		rules, err := withStateful(s.siteRules(site, ls.rules, fsys, time.Duration(cfg.Cache.Revalidate)), site, cfg.Server)
		if err != nil {
			return fail(fmt.Errorf("site %d: %w", i+1, err))
		}
		limits = append(limits, rules.RateLimits...)
		siteHandler := rewrite.New(rules, h.Exists, h)
		if deployHandler != nil {
			// Before the rules: they protect the content, the token the deploys.
			siteHandler = withDeploy(deployHandler, siteHandler)
		}
		siteHandler = s.maintenanceGate(site.MaintenancePage, h, time.Duration(cfg.Server.MaintenanceRetryAfter), siteHandler)
		hosts := site.Hosts // config makes it at least ["*"]
		obs := s.siteObserver(hosts[0], site.Logged())
		plainHandler := siteHandler
		if tlsSite(site) {
			// Plain HTTP: ACME's HTTP-01 challenges (or, for other TLS
			// sites, the files an outside ACME client put in the root
			// there, without the site's rules: no fallback page, rewrite
			// or listing of the site answers over plain HTTP), then the
			// redirect to HTTPS unless the site serves plain HTTP too.
			rest := siteHandler
			if site.RedirectsToHTTPS() {
				rest = toHTTPS(&s.httpsPort, cfg.Server.PublicHTTPSPort, site.RedirectCacheControl)
				plainHandler = challengeFiles(h, rest)
			}
			var src certs.Source = ca.localCA
			switch site.TLS {
			case "local":
				local += len(hosts)
			case "manual":
				src = ls.manual
				ls.manual.OnError = func(err error) { s.log.Error("reloading a certificate failed; keeping the old one", "err", err) }
				for _, h := range hosts {
					manual[h] = ls.manual
				}
			case "acme":
				src = ca.acme
				plainHandler = ca.acme.HTTPHandler(rest)
				acmeNames = append(acmeNames, hosts...)
			}
			secureHandler := attribute(obs, hsts(site.HSTS, siteHandler))
			for _, host := range hosts {
				if err := secure.Add(host, secureHandler); err != nil {
					return fail(fmt.Errorf("site %d: %w", i+1, err))
				}
				selector.Add(host, i, src, ls.clientCAs, ls.deployCAs, s.tlsBase)
			}
		}
		// The redirect to HTTPS and the challenge answers are the site's.
		if err := addHosts(plain, hosts, attribute(obs, plainHandler)); err != nil {
			return fail(fmt.Errorf("site %d: %w", i+1, err))
		}
	}
	return &siteSet{plain: canonical(plain), https: canonical(misdirected(selector, s.notices, secure)), certs: selector, acme: acmeNames, account: ca.acme, manual: manual, sites: len(cfg.Sites), local: local, limits: limits}, closers, nil
}

// openSiteRoot opens the files site i serves: the demo site, its root,
// or, for a deployed site, its active release, then also its deploy
// handler (else nil). dir is what the caller closes (nil for the demo).
// Errors but the demo's name the site.
func openSiteRoot(cfg *config.Config, site *config.Site, ls *liveSite, i int) (fsys fs.FS, dir *serve.Dir, deployHandler *deploy.Handler, err error) {
	if site.Demo {
		sub, err := demoFS()
		return sub, nil, nil, err
	}
	root := site.Root
	if site.Deployed() {
		store, dh, err := openDeploy(cfg, ls, site)
		if err != nil {
			return nil, nil, nil, err // it names server.state_dir and its place
		}
		root, deployHandler = store.Current(), dh
	}
	d, err := serve.OpenDir(root, time.Duration(cfg.Cache.Revalidate))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("site %d: %w", i+1, err)
	}
	return d, d, deployHandler, nil
}

// siteServeOptions are the file server's options for site.
func siteServeOptions(cfg *config.Config, site *config.Site) serve.Options {
	types := map[string]string{}
	for ext, t := range site.Types {
		types[strings.ToLower(ext)] = t
	}
	return serve.Options{
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
		Languages:        site.Languages,
		DefaultLanguage:  site.DefaultLanguage,
		Hidden:           siteFileNames(site),

		RedirectCacheControl: site.RedirectCacheControl,
		ReprDigest:           site.ReprDigest,
	}
}

// addHosts routes each of hosts to h on router.
func addHosts(router *vhost.Router, hosts []string, h http.Handler) error {
	for _, host := range hosts {
		if err := router.Add(host, h); err != nil {
			return err
		}
	}
	return nil
}

// siteFileNames are the names the file server hides: the rules files,
// when the site reads them.
func siteFileNames(site *config.Site) []string {
	if !site.SiteRulesFiles {
		return nil
	}
	return rewrite.SiteFileNames
}

// siteRules are the site's compiled rules and, with site_rules_files,
// its _redirects and _headers, checked for changes as often as the file
// cache revalidates.
func (s *server) siteRules(site *config.Site, rules rewrite.Rules, fsys fs.FS, revalidate time.Duration) rewrite.Rules {
	if site.SiteRulesFiles {
		var hosts []string
		for _, h := range site.Hosts {
			hosts = append(hosts, vhost.Normalize(h))
		}
		rules.Files = rewrite.NewSiteFiles(fsys, rewrite.SiteFilesOptions{Dir: site.Root, Hosts: hosts, Revalidate: revalidate, Log: s.log})
	}
	return rules
}

// withStateful adds to a site's rules the ones that hold state (a rate
// limit's clients) and so are made anew for each site set: the fixed
// responses and the rate limits, each remembering at most
// server.rate_limit_clients addresses, as the site's auth lockout does.
func withStateful(rules rewrite.Rules, site *config.Site, sc config.Server) (rewrite.Rules, error) {
	rules.MaxClients = sc.RateLimitClients
	rules.Respond, rules.RateLimits = nil, nil
	for _, r := range site.Respond {
		rs, err := rewrite.NewRespond(r.Path, r.Status, r.Body, r.Page, time.Duration(r.RetryAfter))
		if err != nil {
			return rules, err
		}
		rules.Respond = append(rules.Respond, rs)
	}
	for _, l := range site.RateLimits {
		rl, err := rewrite.NewRateLimit(l.Path, l.Rate, l.Burst, sc.RateLimitClients)
		if err != nil {
			return rules, err
		}
		rules.RateLimits = append(rules.RateLimits, rl)
	}
	return rules, nil
}

// noSite labels, in the access log and the metrics, the responses that
// no site answered: unknown hosts, requests without Host, 421s. A fixed
// label, so that the Host values of requests cannot make new series.
const noSite = "-"

// siteObserver is what the edge observer needs of the site that answered
// a request; the site's handlers attribute their requests to it.
type siteObserver struct {
	name    string
	logged  bool          // false: the site's requests are counted, not logged
	metrics *metrics.Site // nil without metrics
}

// siteObserver returns the observer of the site named name (its first
// host), or nil when neither the access log nor the metrics are on.
func (s *server) siteObserver(name string, logged bool) *siteObserver {
	if s.access == nil && s.metrics == nil {
		return nil
	}
	o := &siteObserver{name: name, logged: logged}
	if s.metrics != nil {
		o.metrics = s.metrics.Site(name)
	}
	return o
}

// attribute makes h tell the edge observer that o's site answers.
func attribute(o *siteObserver, h http.Handler) http.Handler {
	if o == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accesslog.Attribute(w, o)
		h.ServeHTTP(w, r)
	})
}

// observe wraps a listener's whole handler for the access log and the
// metrics, once for both, or not at all when neither is on: every
// response is seen once, whether a site answered it (attribute says
// which) or the routing refused it first (noSite). The fast path, the
// net/http fallback and HTTP/2 all run this handler.
func (s *server) observe(h http.Handler) http.Handler {
	none := s.siteObserver(noSite, true)
	if none == nil {
		return h
	}
	access := s.access
	return accesslog.Observe(h, func(r *http.Request, rec *accesslog.Recorder, start time.Time) {
		o, ok := rec.Site.(*siteObserver)
		if !ok {
			o = none
		}
		if access != nil && o.logged {
			access.Log(o.name, r, rec, start)
		}
		if o.metrics != nil {
			o.metrics.Observe(rec.Status, rec.Bytes, time.Since(start))
		}
	})
}

// run serves until ctx ends, reloading the sites on every value from hup
// and reopening the access log on every value from usr1: start, the serve
// loop, then shutdown. A listener that fails ends it with its error.
func (s *server) run(ctx context.Context, hup, usr1 <-chan os.Signal, reload func() (*config.Config, error)) error {
	held, err := s.start()
	if err != nil {
		return err
	}
	defer held.release()
	notify(s.log, daemon.SdNotifyReady+"\n"+s.status())
	go s.commitTrial(piupdate.Gokrazy())
	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go watchdog(wctx, s.log, s.probeTarget)
	if err := s.serveLoop(ctx, hup, usr1, reload); err != nil {
		return err
	}
	return s.shutdown()
}

// acquired is what start acquired: the listeners, which the accept
// servers own once they serve them, the pid file and the admin listener;
// and ACME, started then.
type acquired struct {
	s         *server
	passed    map[string]net.Listener // the sockets systemd passed, not yet taken
	plain     net.Listener            // the plain-HTTP listener (nil: none)
	https     net.Listener            // the HTTPS listener (nil: none)
	serving   bool                    // the accept servers were started on them
	pidFile   string                  // written ("": none)
	stopAdmin func()                  // stops the admin listener (nil: none)
}

// release lets go of what the server holds while it serves, beside its
// listeners: the admin listener, the pid file and the ACME account (the
// one the server holds now, which a reload may have opened).
func (a *acquired) release() {
	if a.stopAdmin != nil {
		a.stopAdmin()
	}
	if a.pidFile != "" {
		os.Remove(a.pidFile)
	}
	if a.s.acme != nil {
		a.s.acme.Close()
	}
}

// rollback undoes a start that failed: it closes the listeners, passed
// or bound, and the accept servers, then releases the rest.
func (a *acquired) rollback() {
	for _, ln := range a.passed {
		ln.Close()
	}
	if a.serving {
		if a.s.httpsAccept != nil {
			a.s.httpsAccept.Close()
		}
		a.s.plainAccept.Close()
	}
	// Also when serving: a Serve that had not yet begun leaves its
	// listener open.
	for _, ln := range []net.Listener{a.plain, a.https} {
		if ln != nil {
			ln.Close()
		}
	}
	a.release()
}

// start takes the listeners from systemd or binds them, serves them,
// starts ACME, writes the pid file and starts the admin listener. On an
// error it has released all it acquired; else the caller calls release
// once the server is done.
func (s *server) start() (_ *acquired, err error) {
	a := &acquired{s: s}
	defer func() {
		if err != nil {
			a.rollback()
		}
	}()
	s.checkMaintenance() // before the first request
	if a.passed, err = activated(); err != nil {
		return nil, err
	}
	how, err := a.bind()
	if err != nil {
		return nil, err
	}
	attrs := []any{"sites", len(s.cfg.Sites), "listener", how}
	if a.plain != nil {
		attrs = append(attrs, "http", "http://"+a.plain.Addr().String())
	}
	if a.https != nil {
		attrs = append(attrs, "https", "https://"+a.https.Addr().String())
	}
	s.errc = make(chan error, 2)
	a.serving = true
	if a.plain != nil {
		s.listen(a.plain)
	}
	if tlsLn := a.https; tlsLn != nil {
		go func() {
			if err := s.httpsAccept.Serve(tlsLn); !errors.Is(err, http.ErrServerClosed) {
				s.errc <- err
			}
		}()
	}
	if s.acme != nil {
		s.acme.Start() // the listeners are up for the CA's challenges
	}
	if pf := s.cfg.Server.PIDFile; pf != "" {
		if err := os.WriteFile(pf, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("pid_file: %w", err)
		}
		a.pidFile = pf
	}
	if a.https != nil {
		addr := a.https.Addr()
		s.tlsAddr.Store(&addr)
	}
	s.log.Info("serving", attrs...)
	s.logSites(s.cfg)
	if s.cfg.Admin.Listen != "" {
		if a.stopAdmin, err = s.serveAdmin(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// bind takes each listener from the sockets systemd passed, or else
// binds it, and closes the passed sockets the configuration has no
// listener for. how says where the listeners came from, for the log.
func (a *acquired) bind() (how string, err error) {
	s := a.s
	bindOne := func(name, addr string) (net.Listener, string, error) {
		if ln := a.passed[name]; ln != nil {
			delete(a.passed, name)
			return ln, "socket activation", nil
		}
		if addr == "" {
			return nil, "", nil
		}
		ln, err := net.Listen("tcp", addr)
		return ln, "bound", err
	}
	if a.plain, how, err = bindOne("http", s.cfg.Server.HTTP); err != nil {
		return "", err
	}
	if s.httpsAccept != nil {
		var howTLS string
		if a.https, howTLS, err = bindOne("https", s.cfg.Server.HTTPS); err != nil {
			return "", err
		}
		_, port, _ := net.SplitHostPort(a.https.Addr().String())
		s.httpsPort.Store(port)
		if how == "" {
			how = howTLS
		}
	}
	for name, ln := range a.passed {
		s.log.Warn("ignoring a passed socket this configuration has no listener for", "name", name)
		ln.Close()
	}
	a.passed = nil
	return how, nil
}

// serveLoop handles signals until ctx ends (nil) or a listener fails
// (its error): a value from hup reloads the configuration, one from usr1
// reopens the access log.
func (s *server) serveLoop(ctx context.Context, hup, usr1 <-chan os.Signal, reload func() (*config.Config, error)) error {
	poll := time.NewTicker(maintenancePoll)
	defer poll.Stop()
	for {
		select {
		case <-poll.C:
			s.checkMaintenance()
		case err := <-s.errc:
			return err
		case <-usr1:
			s.reopenAccessLog()
		case <-hup:
			notify(s.log, daemon.SdNotifyReloading+"\n"+daemon.SdNotifyMonotonicUsec())
			s.reload(reload)
			s.checkMaintenance()
			notify(s.log, daemon.SdNotifyReady+"\n"+s.status())
		case <-ctx.Done():
			return nil
		}
	}
}

// reopenAccessLog reopens the access log, if there is one, for log
// rotation.
func (s *server) reopenAccessLog() {
	if s.access == nil {
		return
	}
	if err := s.access.Reopen(); err != nil {
		s.log.Error("reopening the access log", "err", err)
	} else {
		s.log.Info("access log reopened", "dropped_lines", s.access.Dropped())
	}
}

// shutdown stops both accept servers, and their fallbacks, letting the
// requests under way finish within shutdown_timeout and then closing
// what remains; then it closes the site roots and the access log.
func (s *server) shutdown() error {
	notify(s.log, daemon.SdNotifyStopping)
	s.log.Info("shutting down", "grace", time.Duration(s.cfg.Server.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Server.ShutdownTimeout))
	defer cancel()
	var tlsErr error
	tlsDone := make(chan struct{})
	go func() {
		if s.httpsAccept != nil {
			tlsErr = s.httpsAccept.Shutdown(sctx)
		}
		close(tlsDone)
	}()
	err := s.plainAccept.Shutdown(sctx) // and the fallback server with it
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
		if s.httpsAccept != nil {
			s.httpsAccept.Close()
		}
		return s.plainAccept.Close()
	}
	return err
}

// listen makes ln the plain-HTTP listener.
func (s *server) listen(ln net.Listener) {
	s.ln.Store(&ln)
	go func() {
		if err := s.plainAccept.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
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
// refused and the running one stays. It prepares everything first (the
// new listener, the certificate authorities, the sites) without touching
// the server, then commits; refuse is the one way back, releasing all a
// refused reload acquired.
func (s *server) reload(load func() (*config.Config, error)) {
	var (
		newLn   net.Listener
		ca      = s.currentAuthorities()
		closers []io.Closer
	)
	refuse := func(err any) {
		if newLn != nil {
			newLn.Close()
		}
		for _, c := range closers {
			c.Close()
		}
		s.release(ca)
		s.log.Error("reload refused; keeping the running configuration", "err", err)
	}
	cfg, err := load()
	if err != nil {
		refuse(err)
		return
	}
	lv, err := build(cfg)
	if err != nil {
		refuse(err)
		return
	}
	if (cfg.Server.HTTPS == "") != (s.cfg.Server.HTTPS == "") || (cfg.Server.HTTP == "") != (s.cfg.Server.HTTP == "") {
		refuse("turning a listener on or off needs a restart")
		return
	}
	if cfg.Server.HTTP != s.cfg.Server.HTTP {
		if newLn, err = net.Listen("tcp", cfg.Server.HTTP); err != nil {
			refuse(fmt.Errorf("server.http: %w", err))
			return
		}
	}
	if ca, err = s.openAuthorities(cfg, lv); err != nil {
		refuse(err)
		return
	}
	set, closers, err := s.buildSites(cfg, lv, ca)
	if err != nil {
		refuse(err)
		return
	}

	// Commit: nothing below fails.
	if keys := serverChanges(cfg.Server, s.cfg.Server); len(keys) > 0 {
		// Including server.https: the HTTPS socket stays where it is.
		s.log.Warn("reload: [server] changes other than http need a restart: " + strings.Join(keys, ", ") + "; sites and the listener are reloaded")
	}
	// access_log and its format are among the keys listed above.
	if cfg.Admin != s.cfg.Admin {
		s.log.Warn("reload: [admin] changes need a restart")
	}
	if s.acme != nil && cfg.ACME != s.cfg.ACME {
		s.log.Warn("reload: [acme] changes need a restart; the running account stays")
	}
	if newLn != nil {
		// Connections accepted on the old address finish there.
		oldLn := *s.ln.Load()
		s.listen(newLn)
		s.plainAccept.Retire(oldLn)
		s.log.Info("listener moved", "http", "http://"+newLn.Addr().String())
	}
	s.storeAuthorities(ca)
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
	s.logSites(cfg)
}

// serverChanges lists, by their keys in the file, the settings of two
// [server] sections that differ, but for http, public_https_port,
// rate_limit_clients and maintenance_retry_after, the settings a reload
// applies; settings held as pointers or lists are compared by value,
// and fast_http1 and fast_http2 as what they mean (unset is true).
func serverChanges(a, b config.Server) []string {
	a.HTTP, b.HTTP = "", ""
	a.PublicHTTPSPort, b.PublicHTTPSPort = 0, 0
	a.RateLimitClients, b.RateLimitClients = 0, 0
	a.MaintenanceRetryAfter, b.MaintenanceRetryAfter = 0, 0
	fa, fb := a.Fast(), b.Fast()
	a.FastHTTP1, b.FastHTTP1 = &fa, &fb
	ha, hb := a.FastH2(), b.FastH2()
	a.FastHTTP2, b.FastHTTP2 = &ha, &hb
	var keys []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("toml"), ",")
			keys = append(keys, name)
		}
	}
	return keys
}

// unknownHost logs, rate-limited, a request whose Host no site has (the
// client gets a bare 404). The health probes' own requests are not
// logged.
func (s *server) unknownHost(r *http.Request) {
	if r.Host == healthHost {
		return
	}
	s.notices.warn(noticeUnknownHost, "host", clip(r.Host), "remote", r.RemoteAddr, "uri", clip(r.RequestURI))
}

// logSites logs one line per site: its hosts and the URLs that reach
// it, with the plain-HTTP listener's port and the HTTPS port clients
// are sent to (public_https_port, else the listener's).
func (s *server) logSites(cfg *config.Config) {
	httpPort, httpsPort := "", ""
	if p := s.ln.Load(); p != nil {
		_, httpPort, _ = net.SplitHostPort((*p).Addr().String())
	}
	if a := s.tlsAddr.Load(); a != nil {
		_, httpsPort, _ = net.SplitHostPort((*a).String())
	}
	if cfg.Server.PublicHTTPSPort != 0 {
		httpsPort = strconv.Itoa(cfg.Server.PublicHTTPSPort)
	}
	url := func(scheme, host, port, def string) string {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if port != def {
			host += ":" + port
		}
		return scheme + "://" + host + "/"
	}
	for i := range cfg.Sites {
		site := &cfg.Sites[i]
		var urls []string
		plain := "serves"
		if tlsSite(site) && httpsPort != "" {
			for _, h := range site.Hosts {
				urls = append(urls, url("https", h, httpsPort, "443"))
			}
			plain = "redirects to https"
			if !site.RedirectsToHTTPS() {
				plain = "serves"
			}
		}
		if httpPort == "" {
			plain = "none"
		} else if plain == "serves" {
			for _, h := range site.Hosts {
				urls = append(urls, url("http", h, httpPort, "80"))
			}
		}
		root := site.Root
		if site.Demo {
			root = "(embedded demo)"
		}
		s.log.Info("site", "n", i+1, "hosts", strings.Join(site.Hosts, ","), "root", root, "tls", site.TLS, "plain_http", plain, "urls", strings.Join(urls, " "))
	}
}
