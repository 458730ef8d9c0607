#!/usr/bin/env bash
# Side-by-side benchmark: appliance vs nginx, lighttpd, Caddy and Go's http.FileServer.
# Usage: bench/run.sh [go run flags...]   e.g. bench/run.sh -duration 10s -rounds 5
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null || ! command -v lighttpd >/dev/null || ! command -v h2load >/dev/null || [ ! -e /usr/lib/lighttpd/mod_openssl.so ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light lighttpd lighttpd-mod-openssl nghttp2-client >/dev/null
fi
mkdir -p bench/out/bin
if ! command -v caddy >/dev/null && [ ! -x bench/out/bin/caddy ]; then
  GOBIN="$PWD/bench/out/bin" go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9
fi
chmod o+x bench/out . .. 2>/dev/null || true  # nginx workers run as nobody
go build -o bench/out/bench ./bench
bench/out/bench "$@" | tee bench/out/table.md
bench/out/bench -chart bench/results.svg   # from bench/out/results.json
