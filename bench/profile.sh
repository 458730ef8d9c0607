#!/usr/bin/env bash
# Profiles the appliance under the 1 KB page load (wrk -t1 -c50): a CPU
# profile of 10 s and the allocations made meanwhile, from the admin
# listener's /debug/pprof/. Prints the top costs and allocations per
# request; the profiles stay in bench/out/profile/.
#   bench/profile.sh [URL path, default /page.html]
set -euo pipefail
cd "$(dirname "$0")/.."
path=${1:-/page.html}
out=$PWD/bench/out/profile
mkdir -p "$out"
[ -d bench/out/root ] || { echo "run bench/run.sh first (it generates bench/out/root)"; exit 1; }
go build -o "$out/appliance" ./cmd/appliance
cat >"$out/appliance.toml" <<EOF
[server]
http = "127.0.0.1:18580"
[admin]
listen = "127.0.0.1:18581"
pprof = true
[[site]]
root = "$PWD/bench/out/root"
EOF
"$out/appliance" -config "$out/appliance.toml" 2>"$out/appliance.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:18580$path" && break; sleep 0.1; done
wrk -t1 -c50 -d2s "http://127.0.0.1:18580$path" >/dev/null # warm the cache
curl -s -o "$out/allocs-before.pb.gz" http://127.0.0.1:18581/debug/pprof/allocs
wrk -t1 -c50 -d12s --latency "http://127.0.0.1:18580$path" >"$out/wrk.txt" &
load=$!
sleep 1
curl -s -o "$out/cpu.pb.gz" "http://127.0.0.1:18581/debug/pprof/profile?seconds=10"
wait $load
curl -s -o "$out/allocs-after.pb.gz" http://127.0.0.1:18581/debug/pprof/allocs
requests=$(awk '/requests in/ {print $1}' "$out/wrk.txt")
echo "wrk: $(grep -E 'Requests/sec' "$out/wrk.txt"), $requests requests"
echo
echo "== CPU, top 25 (flat), 10 s of the 12 s run"
go tool pprof -top -nodecount=25 "$out/appliance" "$out/cpu.pb.gz" 2>/dev/null | sed -n '1,32p'
echo
echo "== CPU by caller tree (cumulative), top 25"
go tool pprof -top -cum -nodecount=25 "$out/appliance" "$out/cpu.pb.gz" 2>/dev/null | sed -n '6,32p'
echo
echo "== allocations during the run (objects), per request = total / $requests"
go tool pprof -top -sample_index=alloc_objects -nodecount=15 -base "$out/allocs-before.pb.gz" "$out/appliance" "$out/allocs-after.pb.gz" 2>/dev/null | sed -n '1,22p'
