package packaging

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"appliance/config"
)

// TestKubernetesManifest checks what can be checked without a cluster:
// the documents' kinds, that the embedded configuration loads (with its
// paths pointed at test files), and that the ports and paths agree.
func TestKubernetesManifest(t *testing.T) {
	b, err := os.ReadFile("kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	manifest := string(b)
	var kinds []string
	kindRe, versionRe := regexp.MustCompile(`(?m)^kind: (\w+)$`), regexp.MustCompile(`(?m)^apiVersion: \S+$`)
	for _, doc := range strings.Split(manifest, "\n---\n") {
		m := kindRe.FindStringSubmatch(doc)
		if m == nil || !versionRe.MatchString(doc) {
			t.Fatalf("document without apiVersion and kind:\n%s", doc)
		}
		kinds = append(kinds, m[1])
		if strings.Contains(doc, "\t") {
			t.Errorf("%s: tabs in YAML", m[1])
		}
	}
	if strings.Join(kinds, ",") != "ConfigMap,Deployment,Service,PodDisruptionBudget" {
		t.Errorf("kinds %v", kinds)
	}

	// The configuration: the indented block under "appliance.toml: |".
	_, block, ok := strings.Cut(manifest, "  appliance.toml: |\n")
	if !ok {
		t.Fatal("no appliance.toml in the ConfigMap")
	}
	var toml []string
	for _, line := range strings.Split(block, "\n") {
		if line != "" && !strings.HasPrefix(line, "    ") {
			break
		}
		toml = append(toml, strings.TrimPrefix(line, "    "))
	}
	cfg := strings.Join(toml, "\n")
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir, "example.com", "www.example.com")
	site := filepath.Join(dir, "site")
	os.Mkdir(site, 0o755)
	for from, to := range map[string]string{"/srv/site": site, "/etc/appliance/tls/tls.crt": certFile, "/etc/appliance/tls/tls.key": keyFile} {
		if !strings.Contains(cfg, `"`+from+`"`) || !strings.Contains(manifest, strings.TrimSuffix(strings.TrimSuffix(from, "/tls.crt"), "/tls.key")) {
			t.Errorf("%s is not both in the configuration and mounted", from)
		}
		cfg = strings.ReplaceAll(cfg, `"`+from+`"`, `"`+to+`"`)
	}
	c, err := config.Parse("kubernetes.yaml:appliance.toml", []byte(cfg))
	if err != nil {
		t.Fatalf("the ConfigMap's configuration: %v", err)
	}
	for _, port := range []string{c.Server.HTTP, c.Server.HTTPS} {
		if !strings.Contains(manifest, "containerPort: "+strings.TrimPrefix(port, ":")) {
			t.Errorf("listener %s is not a container port", port)
		}
	}
	if !strings.Contains(manifest, "mountPath: "+c.Server.StateDir) {
		t.Errorf("state_dir %s is not a volume (the root file system is read-only)", c.Server.StateDir)
	}
}

// selfSigned writes a certificate and key for names.
func selfSigned(t *testing.T, dir string, names ...string) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}
