package packaging

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPiDeploy runs the README's Raspberry Pi recipe for deploying
// content (Deploying content, "Raspberry Pi"): an image built with its
// config (a site with tls = "local" and a deploy_token, no root), booted
// under qemu (the image writable, as a card); the local CA's root copied
// off the card's partition 4 (as a computer would read the card: here
// e2fsck replays the journal on a copy and debugfs reads the file); then
// appliance deploy -ca local-ca.pem ./public https://<board>/ from this
// machine, and the board serves the deployed page over HTTPS. The board
// is reached by name (localhost through qemu's forwarded port): the
// local CA issues for the name the client sends.
func TestPiDeploy(t *testing.T) {
	piTools(t)
	dir := t.TempDir()
	app, hash := hostAppliance(t, dir)
	config := filepath.Join(dir, "pi.toml")
	os.WriteFile(config, []byte(fmt.Sprintf(`[server]
http = ":80"
https = ":443"
state_dir = "/perm/appliance/state"
log_file = "/perm/appliance/server.log"
[admin]
listen = ":8081"
token = %q
[[site]]
hosts = ["*"]
tls = "local"
deploy_token = %q
`, hash("admin-secret"), hash("deploy-secret"))), 0o644)
	img := buildPi(t, dir, "-config", config)
	b := bootPi(t, img, "", "", false)
	b.waitConsole(t, "msg=serving", 3*time.Minute)

	// The local CA's root, off the card: partition 4 copied, its journal
	// replayed on the copy, the file read.
	out, err := exec.Command("sfdisk", "--json", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		PartitionTable struct{ Partitions []struct{ Start, Size int64 } }
	}
	json.Unmarshal(out, &table)
	p := table.PartitionTable.Partitions[3]
	perm := filepath.Join(dir, "perm.img")
	src, _ := os.Open(img)
	dst, _ := os.Create(perm)
	_, err = io.Copy(dst, io.NewSectionReader(src, p.Start*512, p.Size*512))
	src.Close()
	dst.Close()
	if err != nil {
		t.Fatal(err)
	}
	exec.Command("e2fsck", "-fy", perm).Run() // 1: the journal replayed
	root, err := exec.Command("debugfs", "-R", "cat /appliance/state/local-ca/root.crt", perm).Output()
	if err != nil || !strings.Contains(string(root), "BEGIN CERTIFICATE") {
		t.Fatalf("local-ca/root.crt off the card: %v %q\n%s", err, root, b.consoleLog())
	}
	ca := filepath.Join(dir, "local-ca.pem")
	os.WriteFile(ca, root, 0o644)

	public := filepath.Join(dir, "public")
	os.MkdirAll(filepath.Join(public, "css"), 0o755)
	os.WriteFile(filepath.Join(public, "index.html"), []byte("<h1>deployed to the board</h1>\n"), 0o644)
	os.WriteFile(filepath.Join(public, "css", "site.css"), []byte("h1 { color: teal }\n"), 0o644)
	url := fmt.Sprintf("https://localhost:%d/", b.httpsPort)
	deploy := exec.Command(app, "deploy", "-ca", ca, public, url)
	deploy.Env = append(os.Environ(), "APPLIANCE_DEPLOY_TOKEN=deploy-secret")
	if out, err := deploy.CombinedOutput(); err != nil || !strings.Contains(string(out), url) {
		t.Fatalf("appliance deploy: %v\n%s\n%s", err, out, b.consoleLog())
	} else {
		t.Logf("appliance deploy:\n%s", out)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for path, want := range map[string]string{"": "deployed to the board", "css/site.css": "teal"} {
		res, err := client.Get(url + path)
		if err != nil {
			t.Fatalf("GET /%s: %v", path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET /%s: %d %q", path, res.StatusCode, body)
		}
	}
	b.waitConsole(t, "deploy: release active", 10*time.Second)
}
