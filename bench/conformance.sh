#!/usr/bin/env bash
# External judges against a running appliance, each printing a one-line
# verdict: h2spec and testssl.sh on the HTTPS listener, slowhttptest
# (slowloris and slow read, 1000 connections, 30 s each) while a normal
# client keeps fetching, the malformed-request corpus, and headless
# Chromium loading the demo and a generated multi-page site over HTTP
# and HTTPS (local CA, HTTP/2). Exits non-zero when a judge fails.
#
#   bench/conformance.sh            # all judges (installs what is missing)
#   bench/conformance.sh h2spec browser
#   FAST_HTTP2=false bench/conformance.sh h2spec   # HTTP/2 on net/http's server
set -uo pipefail
cd "$(dirname "$0")/.."
judges=("$@")
[ ${#judges[@]} -gt 0 ] || judges=(h2spec testssl slowhttptest corpus browser)
out=$PWD/bench/out/conformance
rm -rf "$out" && mkdir -p "$out/bin"

need=()
command -v testssl >/dev/null || need+=(testssl.sh)
command -v slowhttptest >/dev/null || need+=(slowhttptest)
command -v chromium >/dev/null || need+=(chromium)
command -v certutil >/dev/null || need+=(libnss3-tools)
command -v curl >/dev/null || need+=(curl)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[ -x bench/out/bin/h2spec ] || GOBIN=$PWD/bench/out/bin go install github.com/summerwind/h2spec/cmd/h2spec@latest
[ -d bench/out/node/node_modules/playwright-core ] || npm install --silent --prefix bench/out/node playwright-core@1 >/dev/null

# The appliance: the demo site on localhost, a generated site on
# pages.localhost, both over HTTP and HTTPS from the local CA.
go build -o "$out/appliance" ./cmd/appliance || exit 1
cp -r cmd/appliance/demo "$out/demo"
mkdir -p "$out/pages"
css=$(printf 'body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; color: #222; }\n%.0s' {1..12})
printf '%s\nnav a { margin-right: 1rem; }\n' "$css" >"$out/pages/site.css"
{
  echo 'document.documentElement.dataset.js = "ok";'
  for i in $(seq 1 30); do echo "function f$i(x) { return x + $i; } // padding so that the script is worth compressing"; done
} >"$out/pages/app.js"
echo '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><circle cx="20" cy="20" r="18" fill="#1c7ed6"/></svg>' >"$out/pages/logo.svg"
for p in index second third; do
  cat >"$out/pages/$p.html" <<EOF
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Generated site: $p</title>
<link rel="icon" href="/logo.svg" type="image/svg+xml">
<link rel="stylesheet" href="/site.css"><script src="/app.js" defer></script></head>
<body><nav><a href="/second">second</a><a href="/third">third</a><a href="/">home</a></nav>
<h1><img src="/logo.svg" alt="" width="40" height="40"> Page $p</h1>
$(for i in $(seq 1 20); do echo "<p>Paragraph $i of page $p: static files served with RFC 9110 semantics, compressed once and cached.</p>"; done)
</body></html>
EOF
done
# A certificate shaped like a public CA's (CRL and OCSP addresses, which
# the local CA's leaves lack) for www.localhost, as tls = "manual".
pki=$out/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=conformance test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=www.localhost" \
  -keyout "$pki/www.key" -out "$pki/www.csr" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:www.localhost" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
  "crlDistributionPoints=URI:http://ca.localhost/ca.crl" "authorityInfoAccess=OCSP;URI:http://ca.localhost/ocsp,caIssuers;URI:http://ca.localhost/ca.crt" >"$pki/www.ext"
openssl x509 -req -in "$pki/www.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 90 \
  -extfile "$pki/www.ext" -out "$pki/www.crt" 2>/dev/null
HTTP=127.0.0.1:18480 HTTPS=127.0.0.1:18443
cat >"$out/appliance.toml" <<EOF
[server]
http = "$HTTP"
https = "$HTTPS"
fast_http2 = ${FAST_HTTP2:-true}
state_dir = "$out/state"
[[site]]
hosts = ["localhost", "127.0.0.1"]
root = "$out/demo"
clean_urls = true
error_pages = { 404 = "/404.html" }
tls = "local"
https_redirect = false
[[site]]
hosts = ["pages.localhost"]
root = "$out/pages"
clean_urls = true
tls = "local"
https_redirect = false
[[site]]
hosts = ["www.localhost"]
root = "$out/pages"
clean_urls = true
tls = "manual"
cert = "$pki/www.crt"
key = "$pki/www.key"
EOF
ulimit -n 65536 2>/dev/null || true
"$out/appliance" -config "$out/appliance.toml" 2>"$out/appliance.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://$HTTP/" && break; sleep 0.1; done
root_ca=$out/state/local-ca/root.crt

verdicts=()
failed=0
verdict() { # name PASS|FAIL detail
  verdicts+=("$1: $2 ($3)")
  echo "$1: $2 ($3)"
  [ "$2" = PASS ] || failed=1
}

# Failures of Go's HTTP/2 server that h2spec reports, analysed in
# bench/RESULTS.md (6.9.1/3 only in some runs); any other failure fails
# the judge.
known_h2spec="6.5.3/1 6.9.1/3 8.1.2.2/1 8.1.2.2/2"

for judge in "${judges[@]}"; do
  case $judge in
  h2spec)
    bench/out/bin/h2spec -t -k -h 127.0.0.1 -p "${HTTPS##*:}" -o 5 >"$out/h2spec.txt" 2>&1
    summary=$(grep -E '^[0-9]+ tests, ' "$out/h2spec.txt" | tail -1)
    # The failing cases' IDs (section/case), from the report's "Failures:" part.
    ids=$(awk '/^Failures:/ {f = 1} f && match($0, /^ +([0-9]+\.)+ /) {sec = $1; sub(/\.$/, "", sec)}
      f && match($0, /× [0-9]+:/) {n = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", n); printf "%s/%s ", sec, n}' "$out/h2spec.txt")
    unexpected=""
    for id in $ids; do [[ " $known_h2spec " == *" $id "* ]] || unexpected+=" $id"; done
    if [ -n "$summary" ] && [ -z "$unexpected" ]; then
      verdict h2spec PASS "$summary; known Go http2 failures: ${ids:-none}"
    else
      verdict h2spec FAIL "${summary:-no summary}; unexpected failures:${unexpected:- none}"
    fi
    ;;
  testssl)
    # Against the site with the public-CA-like certificate: testssl judges
    # the listener's TLS; against the local CA it also reports that its
    # leaves carry no revocation address (cert_revocation, HIGH).
    testssl --quiet --color 0 --warnings batch --add-ca "$pki/ca.crt" --ip 127.0.0.1 --severity MEDIUM --jsonfile "$out/testssl.json" \
      "https://www.localhost:${HTTPS##*:}" >"$out/testssl.txt" 2>&1
    if [ ! -s "$out/testssl.json" ]; then
      verdict testssl FAIL "no report (see $out/testssl.txt)"
    else
      # MEDIUM+ findings as "id=SEVERITY". BREACH is not among them since
      # HTML over TLS goes out uncompressed to requests another site can
      # trigger (testssl's probe carries a Referer from google.com).
      found=$(python3 - "$out/testssl.json" <<'PY'
import json, sys
print(" ".join(f"{f['id']}={f['severity']}" for f in json.load(open(sys.argv[1]))
               if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL")))
PY
)
      if [ -z "$found" ]; then
        verdict testssl PASS "no finding of severity MEDIUM or above"
      else
        verdict testssl FAIL "findings of severity MEDIUM or above: $found"
      fi
    fi
    ;;
  slowhttptest)
    for mode in slowloris slowread; do
      if [ $mode = slowloris ]; then args=(-H -c 1000 -i 10 -r 200 -l 30); else args=(-X -c 1000 -r 200 -w 10 -y 20 -n 5 -z 32 -k 3 -l 30); fi
      slowhttptest "${args[@]}" -u "http://$HTTP/" -g -o "$out/slowhttptest-$mode" >"$out/slowhttptest-$mode.txt" 2>&1 &
      attack=$!
      ok=0 bad=0
      end=$((SECONDS + 30))
      while [ $SECONDS -lt $end ]; do
        code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$HTTP/about")
        if [ "$code" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        sleep 0.2
      done
      wait $attack
      if [ $bad = 0 ] && [ $ok -gt 50 ]; then
        verdict "slowhttptest $mode" PASS "1000 connections for 30 s; a normal client got $ok/$ok 200s"
      else
        verdict "slowhttptest $mode" FAIL "a normal client got $ok 200s and $bad failures"
      fi
    done
    ;;
  corpus)
    if go test -count=1 -run 'TestMalformedRequestCorpus' ./cmd/appliance >"$out/corpus.txt" 2>&1; then
      verdict corpus PASS "every malformed or smuggling request got a clean 4xx or was served safely"
    else
      verdict corpus FAIL "see $out/corpus.txt"
    fi
    ;;
  browser)
    export HOME=$out/home
    mkdir -p "$HOME/.pki/nssdb"
    certutil -d "sql:$HOME/.pki/nssdb" -N --empty-password
    certutil -d "sql:$HOME/.pki/nssdb" -A -n "appliance local CA" -t "C,," -i "$root_ca"
    cp bench/browser/judge.mjs bench/out/node/judge.mjs
    if node bench/out/node/judge.mjs "$PWD/bench/browser" "http://localhost:${HTTP##*:}/" "https://localhost:${HTTPS##*:}/" \
      "http://pages.localhost:${HTTP##*:}/" "https://pages.localhost:${HTTPS##*:}/" >"$out/browser.txt" 2>&1; then
      verdict browser PASS "$(tail -1 "$out/browser.txt"); screenshots in bench/browser/"
    else
      verdict browser FAIL "$(grep FAIL "$out/browser.txt" | head -3 | tr '\n' ' ')"
    fi
    ;;
  *) verdict "$judge" FAIL "unknown judge" ;;
  esac
done
printf '%s\n' "${verdicts[@]}" >"$out/summary.txt"
exit $failed
