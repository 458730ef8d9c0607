// Command bench serves one generated document root with the appliance,
// nginx and Go's http.FileServer side by side on loopback and measures
// each with wrk in interleaved rounds (the server order rotates every
// round). It reports requests/s, MB/s, p99 latency, server CPU time per
// request (from /proc/PID/stat) and RSS, as ratios to nginx.
//
//	go run ./bench -duration 5s -rounds 3 > bench/out/table.md
//
// It needs wrk and nginx (Debian packages wrk and nginx-light).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type server struct {
	name string
	port int
	cmd  *exec.Cmd
}

type scenario struct {
	id, name, path string
	script         string // wrk Lua script, for the 1000-file case
	accept         string // Accept-Encoding sent, if any
	conns          int    // connections; 0: the -c flag
	streams        int    // h2load's streams per connection (-m); 0: 10
	// How: "" wrk over HTTP, "https" wrk over HTTPS keep-alive, "h2"
	// h2load, "full" and "resumed" one request per TLS connection.
	how string
}

type result struct {
	rps, mbps, p99ms, cpuUS, rssMiB, peakMiB float64
}

func main() {
	duration := flag.Duration("duration", 5*time.Second, "length of one wrk run")
	rounds := flag.Int("rounds", 3, "interleaved rounds; the median is reported")
	conns := flag.Int("c", 50, "wrk connections")
	out := flag.String("out", "bench/out", "work directory")
	basePort := flag.Int("port", 18080, "HTTP port of the first server (HTTPS: +100); the next servers take the ports after it")
	only := flag.String("servers", "appliance,nginx,lighttpd,caddy,gofileserver", "servers to compare (also appliance-50rules: fifty rules that match nothing; appliance-gohttp2: fast_http2 = false, net/http's HTTP/2)")
	pick := flag.String("scenarios", "", "comma-separated scenario names to run (default all): page,js,big,small,js-gzip,js-br,small-gzip,page-200,https,h2,h2-small,h2-js-gzip,h2-js-br,h2-200,h2-big,full,resumed")
	chart := flag.String("chart", "", "internal: render RESULTS.json as an SVG chart to this file and exit")
	fileserver := flag.String("fileserver", "", "internal: run http.FileServer on ADDR=ROOT")
	flag.Parse()
	if *fileserver != "" {
		addr, root, _ := strings.Cut(*fileserver, "=")
		h := http.FileServer(http.Dir(root))
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		go func() {
			dir := filepath.Dir(root)
			fmt.Fprintln(os.Stderr, http.ListenAndServeTLS(net.JoinHostPort(host, strconv.Itoa(p+tlsOffset)), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), h))
			os.Exit(1)
		}()
		fmt.Fprintln(os.Stderr, http.ListenAndServe(addr, h))
		os.Exit(1)
	}
	if *chart != "" {
		check(renderChart(filepath.Join(*out, "results.json"), *chart))
		return
	}
	for _, tool := range []string{"wrk", "nginx", "lighttpd", "h2load"} {
		if _, err := exec.LookPath(tool); err != nil {
			fatal(fmt.Errorf("%s not found: apt-get install -y wrk nginx-light lighttpd lighttpd-mod-openssl nghttp2-client", tool))
		}
	}
	dir, err := filepath.Abs(*out)
	check(err)
	root := filepath.Join(dir, "root")
	check(generateRoot(root))
	check(writeCert(dir))
	script := filepath.Join(dir, "small.lua")
	check(os.WriteFile(script, []byte(luaScript), 0o644))

	scenarios := []scenario{
		{id: "page", name: "1 KB page", path: "/page.html"},
		{id: "js", name: "100 KB JS", path: "/app.js"},
		{id: "big", name: "10 MiB file", path: "/big.bin"},
		{id: "small", name: "1000 small files", path: "/", script: script},
		{id: "js-gzip", name: "100 KB JS, gzip", path: "/app.js", accept: "gzip"},
		{id: "js-br", name: "100 KB JS, br", path: "/app.js", accept: "br"},
		{id: "small-gzip", name: "1000 small files, gzip+br", path: "/", script: script, accept: "gzip, br"},
	}
	for i := range scenarios {
		scenarios[i].conns = *conns
	}
	scenarios = append(scenarios,
		scenario{id: "page-200", name: "1 KB page, 200 conns", path: "/page.html", conns: 200},
		scenario{id: "https", name: "1 KB page, HTTPS keep-alive", path: "/page.html", conns: *conns, how: "https"},
		scenario{id: "h2", name: "1 KB page, HTTP/2 (h2load -c50 -m10)", path: "/page.html", conns: *conns, how: "h2"},
		scenario{id: "h2-small", name: "1000 small files, HTTP/2", path: "/", script: script, conns: *conns, how: "h2"},
		scenario{id: "h2-js-gzip", name: "100 KB JS, gzip, HTTP/2", path: "/app.js", accept: "gzip", conns: *conns, how: "h2"},
		scenario{id: "h2-js-br", name: "100 KB JS, br, HTTP/2", path: "/app.js", accept: "br", conns: *conns, how: "h2"},
		scenario{id: "h2-200", name: "1 KB page, HTTP/2 (h2load -c200 -m100)", path: "/page.html", conns: 200, streams: 100, how: "h2"},
		// One download per connection, as wrk's 10 MiB row over HTTP/1.1.
		scenario{id: "h2-big", name: "10 MiB file, HTTP/2 (h2load -m1)", path: "/big.bin", conns: *conns, streams: 1, how: "h2"},
		scenario{id: "full", name: "TLS full handshakes (1 req/conn)", path: "/page.html", conns: 20, how: "full"},
		scenario{id: "resumed", name: "TLS resumed handshakes (1 req/conn)", path: "/page.html", conns: 20, how: "resumed"},
	)
	if *pick != "" {
		scenarios = slices.DeleteFunc(scenarios, func(sc scenario) bool {
			return !slices.Contains(strings.Split(*pick, ","), sc.id)
		})
	}
	var servers []*server
	for i, name := range strings.Split(*only, ",") {
		s := &server{name: name, port: *basePort + i}
		check(portsFree(s.port, s.port+tlsOffset))
		check(s.start(dir, root))
		defer s.stop()
		servers = append(servers, s)
	}
	idle := map[string]float64{}
	for _, s := range servers {
		check(waitUp(s.port))
		idle[s.name] = rssMiB(s.pids())
	}

	// What each server sends for one request of each scenario: the
	// compression ratio, and a check that compression happens at all.
	sizes := map[string]map[string]string{}
	for _, sc := range scenarios {
		sizes[sc.name] = map[string]string{}
		for _, s := range servers {
			sizes[sc.name][s.name] = probe(s.port, sc)
		}
	}

	results := map[string]map[string][]result{} // scenario -> server -> rounds
	for round := range *rounds {
		order := slices.Clone(servers)
		for range round % len(order) {
			order = append(order[1:], order[0])
		}
		for _, sc := range scenarios {
			if results[sc.name] == nil {
				results[sc.name] = map[string][]result{}
			}
			for _, s := range order {
				r, err := run(s, sc, *duration)
				check(err)
				results[sc.name][s.name] = append(results[sc.name][s.name], r)
				fmt.Fprintf(os.Stderr, "round %d %-16s %-13s %9.0f req/s %8.1f MB/s p99 %6.2f ms %6.1f µs CPU/req\n",
					round+1, sc.name, s.name, r.rps, r.mbps, r.p99ms, r.cpuUS)
			}
		}
	}
	report(servers, scenarios, results, idle, sizes, *rounds, *duration, *conns)
	check(writeJSON(filepath.Join(dir, "results.json"), servers, scenarios, results, idle))
}

// tlsOffset is where each server's HTTPS port is, from its HTTP port.
const tlsOffset = 100

func (s *server) start(dir, root string) error {
	switch s.name {
	case "appliance", "appliance-50rules", "appliance-gohttp2":
		bin := filepath.Join(dir, "appliance")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/appliance").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
		cfg := filepath.Join(dir, s.name+".toml")
		conf := fmt.Sprintf("[server]\nhttp = \"127.0.0.1:%d\"\nhttps = \"127.0.0.1:%d\"\nstate_dir = %q\n[[site]]\nroot = %q\ntls = \"manual\"\ncert = %q\nkey = %q\nhsts = \"off\"\nhttps_redirect = false\n",
			s.port, s.port+tlsOffset, filepath.Join(dir, "state"), root, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		if s.name == "appliance-gohttp2" {
			conf = strings.Replace(conf, "[server]\n", "[server]\nfast_http2 = false\n", 1)
		}
		if s.name == "appliance-50rules" {
			// The rewrite issue's case: fifty rules of the usual shape, none matching.
			for i := range 25 {
				conf += fmt.Sprintf("[[site.redirect]]\nfrom = \"^/old-%d/(.*)$\"\nto = \"/new/$1\"\n", i)
				conf += fmt.Sprintf("[[site.rewrite]]\nfrom = \"^/legacy-%d/(.*)$\"\nto = \"/v2/$1\"\n", i)
			}
		}
		os.WriteFile(cfg, []byte(conf), 0o644)
		s.cmd = exec.Command(bin, "-config", cfg)
	case "nginx":
		nd := filepath.Join(dir, "nginx")
		os.MkdirAll(nd, 0o755)
		conf := filepath.Join(nd, "nginx.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, nd, nd, s.port, root, s.port+tlsOffset, dir, dir, root)), 0o644)
		s.cmd = exec.Command("nginx", "-p", nd, "-c", conf)
	case "lighttpd":
		ld := filepath.Join(dir, "lighttpd")
		os.MkdirAll(filepath.Join(ld, "cache"), 0o755)
		conf := filepath.Join(ld, "lighttpd.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(lighttpdConf, root, s.port, ld, ld, ld, s.port+tlsOffset, dir, dir)), 0o644)
		s.cmd = exec.Command("lighttpd", "-D", "-f", conf)
	case "caddy":
		bin, err := exec.LookPath("caddy")
		if err != nil {
			bin = filepath.Join(dir, "bin", "caddy")
		}
		cd := filepath.Join(dir, "caddy")
		os.MkdirAll(cd, 0o755)
		conf := filepath.Join(cd, "Caddyfile")
		os.WriteFile(conf, []byte(fmt.Sprintf(caddyfile, s.port, root, s.port+tlsOffset, dir, dir, root)), 0o644)
		s.cmd = exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
		s.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+cd, "XDG_CONFIG_HOME="+cd)
	case "gofileserver":
		self, err := os.Executable()
		if err != nil {
			return err
		}
		s.cmd = exec.Command(self, "-fileserver", fmt.Sprintf("127.0.0.1:%d=%s", s.port, root))
	default:
		return fmt.Errorf("unknown server %q", s.name)
	}
	s.cmd.Stderr = os.Stderr
	return s.cmd.Start()
}

// portsFree fails when a port is taken already: the run would measure
// whatever listens there.
func portsFree(ports ...int) error {
	for _, p := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return fmt.Errorf("port %d in use (-port picks others): %v", p, err)
		}
		ln.Close()
	}
	return nil
}

func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
		}
	}
}

// pids returns the server process and its children (nginx workers).
func (s *server) pids() []int {
	pids := []int{s.cmd.Process.Pid}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(pid); len(f) > 3 && f[3] == strconv.Itoa(s.cmd.Process.Pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat returns the fields of /proc/PID/stat, the command name removed.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	return append([]string{strconv.Itoa(pid), "comm"}, strings.Fields(string(b[i+1:]))...)
}

// cpuSeconds sums user and system time of pids.
func cpuSeconds(pids []int) float64 {
	var ticks float64
	for _, pid := range pids {
		if f := procStat(pid); len(f) > 14 {
			u, _ := strconv.ParseFloat(f[13], 64)
			s, _ := strconv.ParseFloat(f[14], 64)
			ticks += u + s
		}
	}
	return ticks / 100 // USER_HZ
}

func rssMiB(pids []int) float64 { return procStatus(pids, "VmRSS:") }

// peakMiB is the processes' high-water mark of resident memory.
func peakMiB(pids []int) float64 { return procStatus(pids, "VmHWM:") }

// procStatus sums a kB field of /proc/PID/status over pids, in MiB.
func procStatus(pids []int, field string) float64 {
	var kb float64
	for _, pid := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, field) {
				v, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				kb += v
			}
		}
	}
	return kb / 1024
}

func waitUp(port int) error {
	for range 100 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("port %d never opened", port)
}

// run measures one scenario against one server.
func run(s *server, sc scenario, d time.Duration) (result, error) {
	switch sc.how {
	case "h2":
		return runH2load(s, sc, d)
	case "full", "resumed":
		return runHandshakes(s, sc, d)
	}
	return runWrk(s, sc, d)
}

func runWrk(s *server, sc scenario, d time.Duration) (result, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(sc.conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	if sc.accept != "" {
		args = append(args, "-H", "Accept-Encoding: "+sc.accept)
	}
	if sc.script != "" {
		args = append(args, "-s", sc.script)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", s.port, sc.path)
	if sc.how == "https" {
		url = fmt.Sprintf("https://127.0.0.1:%d%s", s.port+tlsOffset, sc.path)
	}
	args = append(args, url)
	pids := s.pids()
	cpu0 := cpuSeconds(pids)
	out, err := exec.Command("wrk", args...).CombinedOutput()
	cpu1 := cpuSeconds(pids)
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	var r result
	var requests float64
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "Transfer/sec:":
			r.mbps = parseBytes(f[1]) / 1e6
		case len(f) == 2 && f[0] == "99%":
			r.p99ms = parseLatency(f[1])
		case len(f) > 2 && f[1] == "requests" && f[2] == "in":
			requests, _ = strconv.ParseFloat(f[0], 64)
		case strings.Contains(line, "Non-2xx"):
			return r, fmt.Errorf("%s %s: %s", s.name, sc.name, line)
		}
	}
	if requests > 0 {
		r.cpuUS = (cpu1 - cpu0) / requests * 1e6
	}
	r.rssMiB, r.peakMiB = rssMiB(pids), peakMiB(pids)
	return r, nil
}

func parseBytes(s string) float64 {
	for i, u := range []string{"GB", "MB", "KB", "B"} {
		if v, ok := strings.CutSuffix(s, u); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n * float64(int64(1)<<(10*(3-i)))
		}
	}
	return 0
}

func parseLatency(s string) float64 {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 0.001}, {"ms", 1}, {"s", 1000}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n * u.ms
		}
	}
	return 0
}

func values(rs []result, f func(result) float64) []float64 {
	v := []float64{0}
	for _, r := range rs {
		v = append(v, f(r))
	}
	return v
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// probe fetches one response of a scenario and describes its body.
func probe(port int, sc scenario) string {
	path := sc.path
	if sc.script != "" {
		path = smallPath(1)
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if sc.accept != "" {
		req.Header.Set("Accept-Encoding", sc.accept)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	res, err := tr.RoundTrip(req)
	if err != nil {
		return "error"
	}
	defer res.Body.Close()
	n, _ := io.Copy(io.Discard, res.Body)
	enc := res.Header.Get("Content-Encoding")
	if enc == "" {
		enc = "identity"
	}
	return fmt.Sprintf("%s %d B", enc, n)
}

func report(servers []*server, scenarios []scenario, results map[string]map[string][]result, idle map[string]float64, sizes map[string]map[string]string, rounds int, d time.Duration, conns int) {
	host, _ := os.Hostname()
	fmt.Printf("Measured %s on %s (%d CPUs, %s/%s), wrk -t1 -c%d, %d interleaved rounds of %s, medians; ratio = server / nginx.\n\n",
		time.Now().UTC().Format("2006-01-02"), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, conns, rounds, d)
	fmt.Println("| scenario | server | response | req/s | ratio | MB/s | p99 ms | CPU µs/req | ratio | RSS MiB | peak MiB |")
	fmt.Println("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, sc := range scenarios {
		base := results[sc.name]["nginx"]
		for _, s := range servers {
			rs := results[sc.name][s.name]
			rps := median(rs, func(r result) float64 { return r.rps })
			cpu := median(rs, func(r result) float64 { return r.cpuUS })
			ratio, cratio := "", ""
			if len(base) > 0 {
				ratio = fmt.Sprintf("%.2fx", rps/median(base, func(r result) float64 { return r.rps }))
				cratio = fmt.Sprintf("%.2fx", cpu/median(base, func(r result) float64 { return r.cpuUS }))
			}
			fmt.Printf("| %s | %s | %s | %.0f | %s | %.1f | %.2f | %.1f | %s | %.1f | %.1f |\n", sc.name, s.name, sizes[sc.name][s.name], rps, ratio,
				median(rs, func(r result) float64 { return r.mbps }), median(rs, func(r result) float64 { return r.p99ms }),
				cpu, cratio, median(rs, func(r result) float64 { return r.rssMiB }), slices.Max(values(rs, func(r result) float64 { return r.peakMiB })))
		}
	}
	fmt.Println()
	fmt.Print("Idle RSS right after start:")
	for _, s := range servers {
		fmt.Printf(" %s %.1f MiB;", s.name, idle[s.name])
	}
	fmt.Println()
}

// generateRoot writes the document root: a 1 KB page, a 100 KB script,
// a 10 MiB binary and 1000 small pages.
func generateRoot(root string) error {
	if err := os.MkdirAll(filepath.Join(root, "small"), 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	text := func(n int) []byte {
		words := []string{"static ", "site ", "appliance ", "serve ", "cache ", "range ", "etag ", "<p>", "</p>\n", "function ", "return ", "{ ", "} "}
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.Bytes()[:n]
	}
	page := append([]byte("<!doctype html><title>bench</title>"), text(1024-35)...)
	big := make([]byte, 10<<20)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	files := map[string][]byte{"page.html": page, "app.js": text(100 << 10), "big.bin": big, "index.html": page}
	for i := range smallFiles {
		files[smallPath(i)[1:]] = text(200 + i%800)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

const nginxConf = `worker_processes auto;
daemon off;
error_log %s/error.log;
pid %s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    types { text/html html; text/javascript js; application/octet-stream bin; }
    gzip on;
    gzip_types text/javascript;
    gzip_min_length 512;
    server {
        listen 127.0.0.1:%d;
        root %s;
    }
    server {
        listen 127.0.0.1:%d ssl http2;
        ssl_certificate %s/tls.crt;
        ssl_certificate_key %s/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_tickets on;
        root %s;
    }
}
`

const lighttpdConf = `server.document-root = %q
server.port = %d
server.bind = "127.0.0.1"
server.pid-file = "%s/lighttpd.pid"
server.errorlog = "%s/error.log"
server.modules = ("mod_deflate")
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 120
server.max-connections = 4096
server.stat-cache-engine = "simple"
index-file.names = ("index.html")
mimetype.assign = (".html" => "text/html", ".js" => "text/javascript", ".bin" => "application/octet-stream")
deflate.mimetypes = ("text/html", "text/javascript")
deflate.allowed-encodings = ("br", "gzip", "deflate")
deflate.cache-dir = "%s/cache"
server.modules += ("mod_openssl")
$SERVER["socket"] == "127.0.0.1:%d" {
    ssl.engine = "enable"
    ssl.pemfile = "%s/tls.crt"
    ssl.privkey = "%s/tls.key"
}
`

// caddyfile is Caddy's idiomatic static configuration: file_server with
// on-the-fly compression, no admin endpoint, no automatic HTTPS, no
// access log (Caddy logs none unless asked).
const caddyfile = `{
	admin off
	auto_https off
}
http://127.0.0.1:%d {
	root * %s
	encode zstd gzip
	file_server
}
https://127.0.0.1:%d {
	tls %s/tls.crt %s/tls.key
	root * %s
	encode zstd gzip
	file_server
}
`

// smallFiles is how many small pages the root has, at smallPath(0) to
// smallPath(smallFiles-1); luaScript requests the same paths for wrk.
const smallFiles = 1000

func smallPath(i int) string { return fmt.Sprintf("/small/%d.html", i) }

const luaScript = `
local i = 0
request = function()
  i = (i + 1) % 1000
  return wrk.format("GET", "/small/" .. i .. ".html")
end
`

func check(err error) {
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
