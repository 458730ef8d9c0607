package packaging

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// k8sContainer is what the test reads of the Deployment's container.
type k8sContainer struct {
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path        string `yaml:"path"`
		Port        any    `yaml:"port"` // a name or a number
		Scheme      string `yaml:"scheme"`
		HTTPHeaders []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"httpHeaders"`
	} `yaml:"httpGet"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	TCPSocket *struct {
		Port any `yaml:"port"`
	} `yaml:"tcpSocket"`
}

type k8sDoc struct {
	Kind string            `yaml:"kind"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// TestKubernetesProbes runs the manifest's pod as far as this machine
// can without a cluster: the real binary with the ConfigMap's
// configuration (paths moved to a temporary directory, each container
// port to a free one), then the Deployment's probes exactly as the
// kubelet runs them (httpGet to the pod IP, here 127.0.0.1, with that
// address as Host; exec by running the command), and a browser's
// requests through the Service's ports: the redirect to HTTPS must name
// the Service's HTTPS port, not the container's.
func TestKubernetesProbes(t *testing.T) {
	b, err := os.ReadFile("kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]k8sDoc{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d k8sDoc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kubernetes.yaml: %v", err)
		}
		docs[d.Kind] = d
	}
	cfg, ok := docs["ConfigMap"].Data["appliance.toml"]
	if !ok {
		t.Fatal("no appliance.toml in the ConfigMap")
	}
	containers := docs["Deployment"].Spec.Template.Spec.Containers
	if len(containers) != 1 {
		t.Fatalf("%d containers", len(containers))
	}
	ctr := containers[0]
	if ctr.ReadinessProbe == nil || ctr.LivenessProbe == nil {
		t.Fatal("the container needs a readiness and a liveness probe")
	}

	// The pod's files, in a temporary directory.
	dir := t.TempDir()
	bin := filepath.Join(dir, "appliance")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/appliance").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	certFile, keyFile := selfSigned(t, dir, "example.com", "www.example.com")
	site := filepath.Join(dir, "site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("the site"), 0o644)
	configPath := ""
	for _, m := range ctr.VolumeMounts {
		if m.Name == "config" {
			configPath = m.MountPath
		}
	}
	if configPath == "" {
		t.Fatal("no config volume mounted")
	}
	paths := map[string]string{
		"/srv/site": site, "/etc/appliance/tls/tls.crt": certFile, "/etc/appliance/tls/tls.key": keyFile,
		"/var/lib/appliance": filepath.Join(dir, "state"),
	}
	for from, to := range paths {
		if !strings.Contains(cfg, `"`+from+`"`) {
			t.Fatalf("the configuration does not name %s", from)
		}
		cfg = strings.ReplaceAll(cfg, `"`+from+`"`, `"`+to+`"`)
	}
	// Each container port to a free one; every listener must be one.
	ports := map[string]int{} // container port name -> port here
	mapped := map[int]int{}   // container port -> port here
	for _, p := range ctr.Ports {
		free := freePort(t)
		ports[p.Name], mapped[p.ContainerPort] = free, free
	}
	cfg = regexp.MustCompile(`(?m)^(\w+ = ")(:)(\d+)(")`).ReplaceAllStringFunc(cfg, func(s string) string {
		m := regexp.MustCompile(`^(\w+ = "):(\d+)"`).FindStringSubmatch(s)
		n, _ := strconv.Atoi(m[2])
		free, ok := mapped[n]
		if !ok {
			t.Errorf("listener %s is not a container port", s)
		}
		return fmt.Sprintf("%s:%d\"", m[1], free)
	})
	local := filepath.Join(dir, "appliance.toml")
	os.WriteFile(local, []byte(cfg), 0o644)
	// podPath maps the pod's paths in a command line to this machine's.
	podPath := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			switch a {
			case "/usr/bin/appliance":
				a = bin
			case configPath:
				a = local
			}
			out[i] = a
		}
		return out
	}

	// The container: the image's entrypoint is the binary, args follow.
	cmd := exec.Command(bin, podPath(ctr.Args)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log strings.Builder
	waits := []string{"msg=serving"}
	if strings.Contains(cfg, "[admin]") {
		waits = append(waits, "msg=\"admin listener\"")
	}
	deadline := time.After(30 * time.Second)
	for _, want := range waits {
	wait:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("the server exited before logging %q:\n%s", want, log.String())
				}
				log.WriteString(line + "\n")
				if strings.Contains(line, want) {
					break wait
				}
			case <-deadline:
				t.Fatalf("no log line %q:\n%s", want, log.String())
			}
		}
	}
	go func() {
		for range lines {
		}
	}()

	podIP := "127.0.0.1"
	runProbe := func(name string, p *k8sProbe) error {
		switch {
		case p.HTTPGet != nil:
			port := 0
			switch v := p.HTTPGet.Port.(type) {
			case string:
				port = ports[v]
			case int:
				port = mapped[v]
			}
			if port == 0 {
				return fmt.Errorf("port %v is not a container port", p.HTTPGet.Port)
			}
			scheme := strings.ToLower(p.HTTPGet.Scheme)
			if scheme == "" {
				scheme = "http"
			}
			// As the kubelet: Host is the pod IP and port, unless the
			// probe sets one; redirects are not followed; 200-399 passes.
			hostport := net.JoinHostPort(podIP, strconv.Itoa(port))
			req, _ := http.NewRequest("GET", scheme+"://"+hostport+p.HTTPGet.Path, nil)
			req.Header.Set("User-Agent", "kube-probe/1.33")
			for _, h := range p.HTTPGet.HTTPHeaders {
				if strings.EqualFold(h.Name, "Host") {
					req.Host = h.Value
				} else {
					req.Header.Set(h.Name, h.Value)
				}
			}
			client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
				Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			res, err := client.Do(req)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode < 200 || res.StatusCode >= 400 {
				return fmt.Errorf("GET %s (Host %s): %s %q", p.HTTPGet.Path, req.Host, res.Status, body)
			}
			return nil
		case p.Exec != nil:
			args := podPath(p.Exec.Command)
			out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%q: %v\n%s", p.Exec.Command, err, out)
			}
			return nil
		case p.TCPSocket != nil:
			port := 0
			switch v := p.TCPSocket.Port.(type) {
			case string:
				port = ports[v]
			case int:
				port = mapped[v]
			}
			c, err := net.Dial("tcp", net.JoinHostPort(podIP, strconv.Itoa(port)))
			if err == nil {
				c.Close()
			}
			return err
		}
		return fmt.Errorf("%s: no handler", name)
	}
	for name, p := range map[string]*k8sProbe{"readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe, "startup": ctr.StartupProbe} {
		if p == nil {
			continue
		}
		if err := runProbe(name, p); err != nil {
			t.Errorf("%s probe fails: %v", name, err)
		}
	}

	// A browser through the Service: port 80 is the container's http
	// port; the redirect must name the Service's HTTPS port.
	svcPort := map[string]int{} // target port name -> Service port
	for _, p := range docs["Service"].Spec.Ports {
		if name, ok := p.TargetPort.(string); ok {
			svcPort[name] = p.Port
		}
	}
	want := "https://example.com/docs/?q=1"
	if p := svcPort["https"]; p != 443 {
		want = fmt.Sprintf("https://example.com:%d/docs/?q=1", p)
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/docs/?q=1", ports[findTarget(t, docs, 80)]), nil)
	req.Host = "example.com"
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusMovedPermanently || loc != want {
		t.Errorf("http://example.com/docs/?q=1 through the Service: %s, Location %q; want 301 to %q", res.Status, loc, want)
	}
	// And HTTPS through the Service's 443.
	pem, _ := os.ReadFile(certFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"}}
	defer tr.CloseIdleConnections()
	req, _ = http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/", ports[findTarget(t, docs, 443)]), nil)
	req.Host = "example.com"
	res, err = (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "the site" {
		t.Errorf("https://example.com/: %s %q", res.Status, body)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// findTarget returns the container port name the Service sends its
// port to.
func findTarget(t *testing.T, docs map[string]k8sDoc, port int) string {
	t.Helper()
	for _, p := range docs["Service"].Spec.Ports {
		if p.Port == port {
			name, _ := p.TargetPort.(string)
			return name
		}
	}
	t.Fatalf("the Service has no port %d", port)
	return ""
}
