#!/usr/bin/env bash
# Profiles the appliance under the 1 KB page load: over HTTP/1.1 (wrk
# -t1 -c50), or with "h2" over HTTP/2 with TLS (h2load -t1 -c50 -m10, the
# benchmark's HTTP/2 row): a CPU profile of 10 s and the allocations made
# meanwhile, from the admin listener's /debug/pprof/. Prints the top costs
# and allocations per request; the profiles stay in bench/out/profile/.
#   bench/profile.sh [URL path, default /page.html] [h1|h2, default h1]
set -euo pipefail
cd "$(dirname "$0")/.."
path=${1:-/page.html}
proto=${2:-h1}
out=$PWD/bench/out/profile
mkdir -p "$out"
[ -d bench/out/root ] || { echo "run bench/run.sh first (it generates bench/out/root)"; exit 1; }
go build -o "$out/appliance" ./cmd/appliance
if [ "$proto" = h2 ]; then
  # The benchmark's HTTPS site: its certificate, no redirect, no HSTS.
  cat >"$out/appliance.toml" <<EOF
[server]
http = "127.0.0.1:18580"
https = "127.0.0.1:18582"
state_dir = "$out/state"
[admin]
listen = "127.0.0.1:18581"
pprof = true
[[site]]
root = "$PWD/bench/out/root"
tls = "manual"
cert = "$PWD/bench/out/tls.crt"
key = "$PWD/bench/out/tls.key"
hsts = "off"
https_redirect = false
EOF
else
  cat >"$out/appliance.toml" <<EOF
[server]
http = "127.0.0.1:18580"
[admin]
listen = "127.0.0.1:18581"
pprof = true
[[site]]
root = "$PWD/bench/out/root"
EOF
fi
# load SECONDS OUTPUT runs the load of the chosen protocol.
load() {
  if [ "$proto" = h2 ]; then
    h2load -t1 -c50 -m10 -D "$1" "https://127.0.0.1:18582$path" >"$2"
  else
    wrk -t1 -c50 -d"$1"s --latency "http://127.0.0.1:18580$path" >"$2"
  fi
}
"$out/appliance" -config "$out/appliance.toml" 2>"$out/appliance.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:18580$path" && break; sleep 0.1; done
load 2 /dev/null # warm the cache
curl -s -o "$out/allocs-before.pb.gz" http://127.0.0.1:18581/debug/pprof/allocs
load 12 "$out/load.txt" &
loadpid=$!
sleep 1
curl -s -o "$out/cpu.pb.gz" "http://127.0.0.1:18581/debug/pprof/profile?seconds=10"
wait $loadpid
curl -s -o "$out/allocs-after.pb.gz" http://127.0.0.1:18581/debug/pprof/allocs
if [ "$proto" = h2 ]; then
  requests=$(awk '/^requests:/ {print $8}' "$out/load.txt")
  echo "h2load: $(grep -E '^finished in' "$out/load.txt"), $requests requests succeeded"
else
  requests=$(awk '/requests in/ {print $1}' "$out/load.txt")
  echo "wrk: $(grep -E 'Requests/sec' "$out/load.txt"), $requests requests"
fi
echo
echo "== CPU, top 25 (flat), 10 s of the 12 s run"
go tool pprof -top -nodecount=25 "$out/appliance" "$out/cpu.pb.gz" 2>/dev/null | sed -n '1,32p'
echo
echo "== CPU by caller tree (cumulative), top 25"
go tool pprof -top -cum -nodecount=25 "$out/appliance" "$out/cpu.pb.gz" 2>/dev/null | sed -n '6,32p'
echo
echo "== allocations during the run (objects), per request = total / $requests"
go tool pprof -top -sample_index=alloc_objects -nodecount=15 -base "$out/allocs-before.pb.gz" "$out/appliance" "$out/allocs-after.pb.gz" 2>/dev/null | sed -n '1,22p'
