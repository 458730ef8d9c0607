#!/usr/bin/env bash
# Instructions per request of a benchmark that serves requests (b.N of
# them), counted by valgrind's callgrind: the difference between a run
# of LARGE and one of SMALL requests, divided by their difference, so
# that start-up and setup cancel out. With the GC off and no
# asynchronous preemption the count is stable to about 0.1% on a
# loaded machine, where wall times are not; with GC=on the GC's share
# varies by a few percent between runs. Also prints the benchmark's
# allocations a request (a run without valgrind).
#   bench/callgrind.sh PACKAGE BENCHMARK [SMALL LARGE]
#   bench/callgrind.sh ./cmd/appliance H2Page   # the whole HTTP/2 chain
#   bench/callgrind.sh ./h2 ServeMemory          # package h2 alone
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=$1 bench=$2 small=${3:-2000} large=${4:-32000}
out=$PWD/bench/out/callgrind
mkdir -p "$out"
go test -c -o "$out/bench.test" "$pkg"
# cmd/appliance's tests build the binary unless given one: valgrind
# would see the child process's end and may fail.
go build -o "$out/appliance" ./cmd/appliance
export APPLIANCE_TEST_BINARY=$out/appliance
# From the package's directory, as go test runs it (testdata, TestMain).
cd "$pkg"
gc=off
[ "${GC:-off}" = on ] && gc=100
# count N prints the instructions of a run of N requests. Callgrind
# sometimes fails an assertion on a signal a Go thread gets (the log
# says "vgCallgrind_post_signal"): such a run is tried again.
count() {
  for _ in 1 2 3 4 5; do
    if run "$1" && [ -s "$out/callgrind.$1" ]; then
      awk '/^(summary|totals):/ {print $2; exit}' "$out/callgrind.$1"
      return
    fi
  done
  echo "callgrind failed 5 times, see $out/valgrind.$1.log" >&2
  exit 1
}
run() {
  GOGC=$gc GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$1" \
    "$out/bench.test" -test.run='^$' -test.bench="^Benchmark$bench\$" -test.benchtime="$1x" -test.cpu=1 >/dev/null 2>"$out/valgrind.$1.log"
}
a=$(count "$small")
b=$(count "$large")
echo "instructions/request: $(( (b - a) / (large - small) )) ($small: $a, $large: $b; GC $gc)"
"$out/bench.test" -test.run='^$' -test.bench="^Benchmark$bench\$" -test.benchtime="${large}x" -test.cpu=1 | grep -E '^Benchmark'
