package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"appliance/certs"
	"appliance/config"
	"appliance/realip"
	"appliance/rewrite"
	"appliance/vhost"
)

// live is what a configuration names beyond its values, loaded and
// compiled: the certificate files and CA bundles it names, its rule
// tables and its trusted proxies. build makes it, at startup, on every
// reload and for appliance check alike; config itself stays data.
type live struct {
	trusted   realip.Trusted // server.trusted_proxies
	ipHeader  realip.Header  // server.client_ip_header
	acmeRoots *x509.CertPool // acme.ca_root; nil: the system's roots
	sites     []liveSite     // by the index of cfg.Sites
}

// liveSite is what one [[site]] names.
type liveSite struct {
	rules     rewrite.Rules
	manual    *certs.Manual   // the certificate of a tls = "manual" site
	clientCAs *x509.CertPool  // client_ca; nil: none
	deploy    *rewrite.Secret // deploy_token; nil: none
	deployCAs *x509.CertPool  // deploy_client_ca; nil: none
}

// build loads and compiles what cfg names. Each error names its key's
// place in the file (cfg.Where), as config's own errors do; all are
// reported, one a line.
func build(cfg *config.Config) (*live, error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", cfg.Where(key), fmt.Sprintf(format, args...)))
	}
	lv := &live{sites: make([]liveSite, len(cfg.Sites))}
	var err error
	if lv.trusted, err = realip.ParseTrusted(cfg.Server.TrustedProxies); err != nil {
		fail("server.trusted_proxies", "trusted_proxies: %v", err)
	}
	if lv.ipHeader, err = realip.ParseHeader(cfg.Server.ClientIPHeader); err != nil {
		fail("server.client_ip_header", "%v", err)
	}
	acme := false
	for i := range cfg.Sites {
		acme = acme || cfg.Sites[i].TLS == "acme"
	}
	if acme && cfg.ACME.CARoot != "" {
		if lv.acmeRoots, err = certs.LoadCertPool(cfg.ACME.CARoot); err != nil {
			fail("acme.ca_root", "ca_root: %v", err)
		}
	}
	for i := range cfg.Sites {
		site, ls, key := &cfg.Sites[i], &lv.sites[i], fmt.Sprintf("site.%d", i)
		ls.rules = site.Rules()
		if tlsSite(site) && site.ClientCA != "" {
			if ls.clientCAs, err = certs.LoadCertPool(site.ClientCA); err != nil {
				fail(key+".client_ca", "client_ca: %v", err)
			}
		}
		if site.TLS == "manual" {
			ls.manual = loadManual(site, key, fail)
		}
		if tlsSite(site) && site.DeployClientCA != "" {
			if ls.deployCAs, err = certs.LoadCertPool(site.DeployClientCA); err != nil {
				fail(key+".deploy_client_ca", "deploy_client_ca: %v", err)
			}
		}
		if site.DeployToken != "" {
			if ls.deploy, err = rewrite.NewSecret(site.DeployToken); err != nil {
				fail(key+".deploy_token", "deploy_token: %v", err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return lv, nil
}

// loadManual loads the certificate of a tls = "manual" site (key is
// the site's, "site.0"), which must cover the site's hosts.
func loadManual(site *config.Site, key string, fail func(key, format string, args ...any)) *certs.Manual {
	m, err := certs.NewManual(site.Cert, site.Key)
	if err != nil {
		fail(key+".cert", "%v", err)
		return nil
	}
	for _, h := range site.Hosts {
		if h == "*" {
			continue
		}
		name := strings.TrimPrefix(vhost.Normalize(h), "*.")
		if strings.HasPrefix(h, "*.") {
			name = "x." + name // a name the wildcard covers
		}
		if err := m.Leaf().VerifyHostname(name); err != nil {
			fail(key+".cert", "certificate %s does not cover host %q", site.Cert, h)
		}
	}
	return m
}
