package config

import (
	"strings"
	"testing"
)

func TestProxyKeys(t *testing.T) {
	dir := t.TempDir()
	site := "\n[[site]]\nroot = \"" + dir + "\"\n"
	c, err := Parse("a.toml", []byte("[server]\nhttp = \":8080\"\nhttps = \":8443\"\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\nclient_ip_header = \"forwarded\"\nproxy_protocol = [\"https\"]\npublic_https_port = 443\n"+site))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if len(s.TrustedProxies) != 2 || s.ClientIPHeader != "forwarded" || s.ProxyProtocol.Has("http") || !s.ProxyProtocol.Has("https") || s.PublicHTTPSPort != 443 {
		t.Errorf("server %+v", s)
	}
	c, err = Parse("a.toml", []byte("[server]\nhttp = \":8080\"\ntrusted_proxies = [\"10.0.0.0/8\"]\nproxy_protocol = true\n"+site))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Server.ProxyProtocol.Has("http") || !c.Server.ProxyProtocol.Has("https") {
		t.Errorf("proxy_protocol = true: %v", c.Server.ProxyProtocol)
	}
	c, err = Parse("a.toml", []byte("[server]\nhttp = \":8080\"\nproxy_protocol = false\n"+site))
	if err != nil || len(c.Server.ProxyProtocol) != 0 || len(c.Server.TrustedProxies) != 0 {
		t.Fatalf("defaults: %v %+v", err, c.Server)
	}
	for _, bad := range []struct{ conf, want string }{
		{"trusted_proxies = [\"10.0.0.0/33\"]", `a.toml:3: trusted_proxies: "10.0.0.0/33" is not a CIDR prefix`},
		{"trusted_proxies = [\"proxy.example\"]", `a.toml:3: trusted_proxies: "proxy.example"`},
		{"client_ip_header = \"X-Real-IP\"", `a.toml:3: client_ip_header "X-Real-IP"`},
		{"proxy_protocol = true", `a.toml:3: proxy_protocol needs trusted_proxies`},
		{"trusted_proxies = [\"10.0.0.1\"]\nproxy_protocol = [\"https\"]", `a.toml:4: proxy_protocol: there is no https listener`},
		{"trusted_proxies = [\"10.0.0.1\"]\nproxy_protocol = [\"admin\"]", `a.toml:4: proxy_protocol: unknown listener "admin"`},
		{"proxy_protocol = \"http\"", `a.toml:3: want true, false or a list`},
		{"public_https_port = 443", `a.toml:3: public_https_port needs server.https`},
		{"https = \":8443\"\npublic_https_port = 70000", `a.toml:4: public_https_port 70000`},
	} {
		_, err := Parse("a.toml", []byte("[server]\nhttp = \":8080\"\n"+bad.conf+"\n"+site))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want %q", bad.conf, err, bad.want)
		}
	}
}
