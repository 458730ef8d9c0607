package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"appliance/config"
	"appliance/deploy"
)

// deployLimits are the [deploy] bounds.
func deployLimits(cfg *config.Config) deploy.Limits {
	d := cfg.Deploy
	return deploy.Limits{
		MaxFiles:         d.MaxFiles,
		MaxFileBytes:     int64(d.MaxFileBytes),
		MaxSiteBytes:     int64(d.MaxSiteBytes),
		MaxManifestBytes: int64(d.MaxManifestBytes),
		MaxUploads:       d.MaxUploads,
		Keep:             d.Keep,
	}
}

// siteStateDir is where a deployable site keeps its releases:
// server.state_dir/sites/<site.DeployDir()>.
func siteStateDir(stateDir string, site *config.Site) string {
	return filepath.Join(stateDir, "sites", site.DeployDir())
}

// openDeploy opens the release store of the deployable site, and the
// handler of its deploy protocol, which admits the
// token ls.deploy hashes and the client certificates of ls.deployCAs.
func openDeploy(cfg *config.Config, ls *liveSite, site *config.Site) (*deploy.Store, *deploy.Handler, error) {
	store, err := deploy.Open(siteStateDir(cfg.Server.StateDir, site), deployLimits(cfg))
	if err != nil {
		return nil, nil, stateDirError(cfg, "sites", err)
	}
	h := &deploy.Handler{Store: store, ClientCAs: ls.deployCAs, ReadTimeout: time.Duration(cfg.Server.ReadTimeout), WriteTimeout: time.Duration(cfg.Server.WriteTimeout)}
	if ls.deploy != nil {
		h.Authorized = ls.deploy.CheckBearer
	}
	return store, h, nil
}

// withDeploy sends the requests under deploy.Prefix to d, before the
// site's rules, and the rest to next.
func withDeploy(d, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, deploy.Prefix) {
			d.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// flagOrEnv is the value of the flag name, else of the environment
// variable env.
func flagOrEnv(inv *invocation, name, env string) string {
	if v := *inv.vals[name]; v != "" {
		return v
	}
	return os.Getenv(env)
}

// deployCommand runs deploy DIR URL, releases URL and rollback URL, with
// the token from APPLIANCE_DEPLOY_TOKEN or a client certificate (-cert,
// -key).
func deployCommand(inv *invocation, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "appliance %s: %v\n", inv.name, err)
		return 1
	}
	c, err := deployClient(inv)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	switch inv.name {
	case "releases":
		rels, err := c.Releases(ctx)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%-20s  %-20s  %6s  %12s  %s\n", "ID", "TIME", "FILES", "BYTES", "ACTIVE")
		for _, r := range rels {
			active := ""
			if r.Active {
				active = "*"
			}
			fmt.Fprintf(stdout, "%-20s  %-20s  %6d  %12d  %s\n", r.ID, r.Time.Format(time.RFC3339), r.Files, r.Bytes, active)
		}
		return 0
	case "rollback":
		rel, err := c.Rollback(ctx)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "active: %s (%d files, %d bytes) on %s\n", rel.ID, rel.Files, rel.Bytes, c.Reached())
		return 0
	}
	if err := deployFolder(ctx, c, inv, stdout, stderr); err != nil {
		return fail(err)
	}
	return 0
}

// deployClient is the client of the site the command's URL names, with
// its credentials: the token from APPLIANCE_DEPLOY_TOKEN, a client
// certificate (-cert, -key), and the CAs of -ca.
func deployClient(inv *invocation) (*deploy.Client, error) {
	site, err := url.Parse(inv.pos[len(inv.pos)-1])
	if err != nil {
		return nil, err
	}
	if site.Path == "" {
		site.Path = "/"
	}
	if err := deploy.CheckURL(site); err != nil {
		return nil, err
	}
	token := os.Getenv("APPLIANCE_DEPLOY_TOKEN")
	certFile, keyFile := flagOrEnv(inv, "cert", "APPLIANCE_DEPLOY_CERT"), flagOrEnv(inv, "key", "APPLIANCE_DEPLOY_KEY")
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both -cert FILE and -key FILE (or APPLIANCE_DEPLOY_CERT and APPLIANCE_DEPLOY_KEY)")
	}
	if token == "" && certFile == "" {
		return nil, errors.New("set APPLIANCE_DEPLOY_TOKEN to the site's deploy token, or give a client certificate with -cert FILE -key FILE")
	}
	tc := &tls.Config{}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if ca := *inv.vals["ca"]; ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", ca)
		}
	}
	// No overall timeout (an upload takes what it takes), but a server
	// that does not connect, shake hands or answer is given up on.
	return &deploy.Client{Site: site, Token: token, HTTP: &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: tc, ForceAttemptHTTP2: true, Proxy: http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 30 * time.Second, ResponseHeaderTimeout: 5 * time.Minute,
		},
	}}, nil
}

// deployFolder deploys the command's folder with c, saying what it
// left out and, at the end, what it sent.
func deployFolder(ctx context.Context, c *deploy.Client, inv *invocation, stdout, stderr io.Writer) error {
	scan := deploy.Scan
	if *inv.vals["vcs"] != "" {
		scan = deploy.ScanWithVCS
	}
	local, err := scan(inv.pos[0])
	if err != nil {
		return err
	}
	if len(local.Skipped) > 0 {
		fmt.Fprintf(stdout, "left out %s (version control; -vcs sends them)\n", strings.Join(local.Skipped, ", "))
	}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		var bar *progressbar.ProgressBar
		c.Plan = func(files int, bytes int64) {
			bar = progressbar.NewOptions64(bytes, progressbar.OptionSetWriter(stderr), progressbar.OptionShowBytes(true),
				progressbar.OptionSetDescription(fmt.Sprintf("uploading %d files", files)), progressbar.OptionClearOnFinish())
		}
		c.Progress = func(n int64) { bar.Add64(n) }
	}
	res, err := c.Deploy(ctx, local)
	if err != nil {
		if res.Uploaded > 0 {
			fmt.Fprintf(stderr, "appliance deploy: %d files (%d bytes) were uploaded and are kept: run the same command again to finish\n", res.Uploaded, res.UploadedBytes)
		}
		return err
	}
	if res.Unchanged {
		fmt.Fprintf(stdout, "unchanged: release %s is already live on %s\n", res.Release.ID, c.Reached())
		return nil
	}
	resumed := ""
	if res.ResumedBytes > 0 {
		resumed = fmt.Sprintf("; %d more resumed: a cut-off upload had left them", res.ResumedBytes)
	}
	fmt.Fprintf(stdout, "uploaded %d of %d files (%d of %d bytes%s)\nrelease %s is live on %s\n",
		res.Uploaded, len(local.Files), res.UploadedBytes, local.Bytes(), resumed, res.Release.ID, c.Reached())
	return nil
}
