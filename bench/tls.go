package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// writeCert writes the ECDSA P-256 certificate every server's HTTPS
// listener uses (tls.crt, tls.key in dir).
func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o644)
}

var h2Re = regexp.MustCompile(`finished in [^,]+, ([\d.]+) req/s, ([\d.]+)(\w?B)/s`)
var h2DoneRe = regexp.MustCompile(`requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded`)
var h2TimeRe = regexp.MustCompile(`time for request:\s+\S+\s+\S+\s+(\S+)`)

// runH2load measures HTTP/2 over TLS with h2load: sc.conns connections,
// sc.streams concurrent streams each (10 by default), sc.accept as
// Accept-Encoding; with sc.script, the 1000 small files in turn (h2load
// takes the paths of the URIs after the first).
func runH2load(s *server, sc scenario, d time.Duration) (result, error) {
	streams := sc.streams
	if streams == 0 {
		streams = 10
	}
	args := []string{"-c", strconv.Itoa(sc.conns), "-m", strconv.Itoa(streams), "-t", "1", "-D", strconv.Itoa(int(d.Seconds()))}
	if sc.accept != "" {
		args = append(args, "-H", "accept-encoding: "+sc.accept)
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", s.port+tlsOffset)
	if sc.script != "" {
		for i := range smallFiles {
			args = append(args, base+smallPath(i))
		}
	} else {
		args = append(args, base+sc.path)
	}
	pids := s.pids()
	cpu0 := cpuSeconds(pids)
	out, err := exec.Command("h2load", args...).CombinedOutput()
	cpu1 := cpuSeconds(pids)
	if err != nil {
		return result{}, fmt.Errorf("h2load %s: %v\n%s", s.name, err, out)
	}
	m, done := h2Re.FindStringSubmatch(string(out)), h2DoneRe.FindStringSubmatch(string(out))
	if m == nil || done == nil {
		return result{}, fmt.Errorf("h2load %s: unexpected output\n%s", s.name, out)
	}
	if done[2] != done[3] {
		return result{}, fmt.Errorf("h2load %s: %s of %s requests failed\n%s", s.name, done[2], done[3], out)
	}
	if !strings.Contains(string(out), "Application protocol: h2") {
		return result{}, fmt.Errorf("h2load %s: not HTTP/2\n%s", s.name, out)
	}
	var r result
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	r.mbps = parseBytes(m[2]+m[3]) / 1e6
	if t := h2TimeRe.FindStringSubmatch(string(out)); t != nil {
		r.p99ms = parseLatency(t[1]) // h2load reports no percentiles: the mean
	}
	if n, _ := strconv.ParseFloat(done[3], 64); n > 0 {
		r.cpuUS = (cpu1 - cpu0) / n * 1e6
	}
	r.rssMiB, r.peakMiB = rssMiB(pids), peakMiB(pids)
	return r, nil
}

// runHandshakes opens a TLS connection per request from sc.conns
// goroutines (TCP_NODELAY, as Go dials), with session resumption for
// "resumed", and reports connections per second.
func runHandshakes(s *server, sc scenario, d time.Duration) (result, error) {
	// X25519 as OpenSSL 3.0 (Debian's nginx and lighttpd) offers it: Go
	// would otherwise negotiate the costlier X25519MLKEM768 with the Go
	// servers only.
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}, CurvePreferences: []tls.CurveID{tls.X25519}}
	if sc.how == "resumed" {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(sc.conns * 2)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", s.port+tlsOffset)
	req := []byte("GET " + sc.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	one := func() (bool, int64, error) {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return false, 0, err
		}
		defer c.Close()
		if _, err := c.Write(req); err != nil {
			return false, 0, err
		}
		br := bufio.NewReader(c)
		status, err := br.ReadString('\n')
		if err != nil || !strings.Contains(status, " 200 ") {
			return false, 0, fmt.Errorf("status %q: %v", status, err)
		}
		n, _ := io.Copy(io.Discard, br)
		return c.ConnectionState().DidResume, n + int64(len(status)), nil
	}
	// Warm the session cache so every measured connection can resume.
	for range sc.conns {
		if _, _, err := one(); err != nil {
			return result{}, fmt.Errorf("%s: %v", s.name, err)
		}
	}
	pids := s.pids()
	cpu0 := cpuSeconds(pids)
	var (
		mu        sync.Mutex
		lat       []float64
		bytes     int64
		resumed   int
		firstErr  error
		deadline  = time.Now().Add(d)
		wg        sync.WaitGroup
		startTime = time.Now()
	)
	for range sc.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t := time.Now()
				did, n, err := one()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, float64(time.Since(t).Microseconds())/1000)
				bytes += n
				if did {
					resumed++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(startTime).Seconds()
	cpu1 := cpuSeconds(pids)
	if firstErr != nil {
		return result{}, fmt.Errorf("%s: %v", s.name, firstErr)
	}
	if sc.how == "resumed" && resumed < len(lat)*9/10 {
		return result{}, fmt.Errorf("%s: only %d of %d connections resumed their session", s.name, resumed, len(lat))
	}
	slices.Sort(lat)
	r := result{rps: float64(len(lat)) / elapsed, mbps: float64(bytes) / elapsed / 1e6, p99ms: lat[int(math.Ceil(float64(len(lat))*0.99))-1]}
	r.cpuUS = (cpu1 - cpu0) / float64(len(lat)) * 1e6
	r.rssMiB, r.peakMiB = rssMiB(pids), peakMiB(pids)
	return r, nil
}

// jsonResult is one line of results.json.
type jsonResult struct {
	Scenario, Server                      string
	RPS, MBps, P99ms, CPUus, RSS, PeakRSS float64
}

func writeJSON(path string, servers []*server, scenarios []scenario, results map[string]map[string][]result, idle map[string]float64) error {
	var out struct {
		Date    string
		Idle    map[string]float64
		Results []jsonResult
	}
	out.Date, out.Idle = time.Now().UTC().Format("2006-01-02"), idle
	for _, sc := range scenarios {
		for _, s := range servers {
			rs := results[sc.name][s.name]
			out.Results = append(out.Results, jsonResult{sc.name, s.name,
				median(rs, func(r result) float64 { return r.rps }), median(rs, func(r result) float64 { return r.mbps }),
				median(rs, func(r result) float64 { return r.p99ms }), median(rs, func(r result) float64 { return r.cpuUS }),
				median(rs, func(r result) float64 { return r.rssMiB }), slices.Max(values(rs, func(r result) float64 { return r.peakMiB }))})
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
