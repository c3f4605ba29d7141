#!/usr/bin/env bash
# scripts/bench-livekit.sh — Sanke against LiveKit server 1.13.5: the same `sanke loadtest`
# scenarios against each server in turn, and a table of the results (BENCHMARKS.md).
#
#   ./scripts/bench-livekit.sh [-n REPEATS] [-s "A100 B200 C50"] [-o DIR] [--pin] [--rt]
#
# It
#   1. builds livekit-server 1.13.5 once with `go install` into a cache directory outside the
#      repository (nothing of LiveKit is committed) and builds sanke from this checkout;
#   2. for each scenario and repeat, for each server (alternating, so that a drift of the host's
#      speed touches both alike): starts a fresh server on loopback, waits until it answers,
#      runs `sanke loadtest --server-pid PID --json` and stops the server;
#   3. prints, per scenario and server, the median and the range (min-max) over the repeats.
#
# Both servers get the same settings: 127.0.0.1 only, the same API key and secret, one UDP port
# for all media, no ICE-TCP, no TURN, loopback candidates, log level warn.
#
# Server CPU comes from the server process itself (utime+stime of all its threads in
# /proc/PID/stat over the measuring window, read by the generator), divided by the packets the
# subscribers received in the window; memory is VmRSS. (Instruction counts would be steadier on
# a busy host, but `perf stat -e instructions` needs a PMU that most VMs do not expose.)
#
# Options:
#   -n N       repeats per scenario and server (default 3)
#   -s LIST    scenarios, space-separated (default "A100 B200 C50"; also A200, A500, G30)
#   -o DIR     keep every run's JSON report and server log in DIR (default: a new temp dir)
#   --pin      pin the server to CPU 0 and the generator to the other CPUs (taskset). Go then
#              sizes GOMAXPROCS to the pinned set, so on a 2-CPU host each server runs on one
#              processor: a different server from the one deployed.
#   --rt       run server and generator at the lowest real-time priority (chrt -r 1), so other
#              processes on a shared host do not preempt them (needs root or CAP_SYS_NICE)
# Environment:
#   SANKE_TOOLS       cache of built tools (default ~/.cache/sanke-tools)
#   BENCH_SANKE_PORT  first of Sanke's two ports (HTTP, UDP = +2; default 17880)
#   BENCH_LK_PORT     first of LiveKit's two ports (default 27880)
# Needs: go, jq; taskset/chrt for --pin/--rt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
API_KEY=benchkey
API_SECRET=bench-secret-0123456789abcdef0123456789abcdef
START_TIMEOUT=60 # seconds a server gets to answer on its HTTP port

die() { printf 'bench-livekit: %s\n' "$*" >&2; exit 1; }
note() { printf 'bench-livekit: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/livekit.sh
. "$ROOT/scripts/lib/livekit.sh"

repeats=3
scenarios="A100 B200 C50"
out=""
pin=0
rt=0
while [ $# -gt 0 ]; do
	case "$1" in
	-n) repeats="${2:?-n needs a number}"; shift 2 ;;
	-s) scenarios="${2:?-s needs a list}"; shift 2 ;;
	-o) out="${2:?-o needs a directory}"; shift 2 ;;
	--pin) pin=1; shift ;;
	--rt) rt=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number, not $repeats"
command -v go >/dev/null || die "go is not installed"
command -v jq >/dev/null || die "jq is not installed (apt-get install jq)"

# scenario_flags prints the loadtest flags of a scenario (the names of BENCHMARKS.md).
scenario_flags() {
	case "$1" in
	A100) echo "--video-publishers 1 --subscribers 100 --duration 20s --ramp-up 6s" ;;
	A200) echo "--video-publishers 1 --subscribers 200 --duration 20s --ramp-up 10s" ;;
	A500) echo "--video-publishers 1 --subscribers 500 --duration 20s --ramp-up 20s" ;;
	B200) echo "--video-publishers 0 --audio-publishers 10 --subscribers 200 --duration 20s --ramp-up 10s" ;;
	C50) echo "--video-publishers 1 --audio-publishers 1 --subscribers 50 --duration 10s --ramp-up 0s" ;;
	G30) echo "--video-publishers 4 --audio-publishers 4 --subscribers 30 --layout grid --duration 20s --ramp-up 5s" ;;
	*) return 1 ;;
	esac
}
for s in $scenarios; do
	scenario_flags "$s" >/dev/null || die "unknown scenario $s (A100 A200 A500 B200 C50 G30)"
done

server_prefix=()
gen_prefix=()
if [ "$pin" = 1 ]; then
	command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
	ncpu=$(nproc)
	[ "$ncpu" -ge 2 ] || die "--pin needs 2 CPUs or more"
	server_prefix+=(taskset -c 0)
	gen_prefix+=(taskset -c "1-$((ncpu - 1))")
fi
if [ "$rt" = 1 ]; then
	command -v chrt >/dev/null || die "--rt needs chrt (util-linux)"
	server_prefix+=(chrt -r 1)
	gen_prefix+=(chrt -r 1)
fi

# Everything the script starts is stopped when it ends, however it ends.
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-livekit.XXXXXX")"
[ -n "$out" ] || out="$work/out"
mkdir -p "$out"
server_pid=""
gen_pid=""
# stop_server asks the server to shut down (SIGTERM: a script's background jobs ignore SIGINT
# unless they handle it) and kills it if it has not within 10 s.
stop_server() {
	[ -n "$server_pid" ] || return 0
	kill -TERM "$server_pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}
cleanup() {
	if [ -n "$gen_pid" ]; then
		kill -TERM "$gen_pid" 2>/dev/null || true
		wait "$gen_pid" 2>/dev/null || true
	fi
	stop_server
	# Keep only the results: the whole work directory when they are elsewhere.
	if [ "$out" = "$work/out" ]; then
		rm -rf "$work/sanke" "$work/sanke-data"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. Binaries ----------------------------------------------------------------------------
lk_bin="$(livekit_server "$work")"
sanke_bin="$work/sanke"
(cd "$ROOT" && go build -o "$sanke_bin" ./cmd/sanke) || die "building sanke failed"

# --- 2. Server configurations ---------------------------------------------------------------
sanke_port="${BENCH_SANKE_PORT:-17880}"
lk_port="${BENCH_LK_PORT:-27880}"
sanke_config "$work/sanke.yaml" "$sanke_port" warn "$work/sanke-data"
cat >"$work/livekit.yaml" <<EOF
port: $lk_port
bind_addresses: ["127.0.0.1"]
rtc:
  udp_port: $((lk_port + 2))
  tcp_port: 0
  use_external_ip: false
  node_ip: 127.0.0.1
  enable_loopback_candidate: true
keys:
  $API_KEY: $API_SECRET
logging:
  level: warn
EOF


# start_server starts server $1 (sanke or livekit) with its log in $2, and waits until it
# answers on its HTTP port; it sets server_pid and server_port, or ends the script.
start_server() {
	local name="$1" log="$2" cmd
	case "$name" in
	sanke) server_port="$sanke_port"; cmd=("$sanke_bin" serve --config "$work/sanke.yaml") ;;
	livekit) server_port="$lk_port"; cmd=("$lk_bin" --config "$work/livekit.yaml") ;;
	esac
	port_open "$server_port" && die "port $server_port is already in use (set BENCH_SANKE_PORT / BENCH_LK_PORT)"
	"${server_prefix[@]}" "${cmd[@]}" >"$log" 2>&1 &
	server_pid=$!
	local deadline=$((SECONDS + START_TIMEOUT))
	until port_open "$server_port"; do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			tail -n 20 "$log" >&2
			server_pid=""
			die "$name exited before answering on port $server_port (log above, in $log)"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail -n 20 "$log" >&2
			die "$name did not answer on port $server_port within ${START_TIMEOUT}s (log above, in $log)"
		fi
		sleep 0.2
	done
}

# --- 3. Runs --------------------------------------------------------------------------------
failed=0
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr), $(go version | cut -d' ' -f3)"
	echo "sanke: $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown); livekit-server $LK_VERSION"
	echo "repeats: $repeats; pin: $pin; rt: $rt; results: $out"
} | tee "$out/README" >&2
for scen in $scenarios; do
	read -r -a flags <<<"$(scenario_flags "$scen")"
	for i in $(seq "$repeats"); do
		for name in sanke livekit; do
			run="$out/$scen-$name-$i"
			note "$scen $name run $i/$repeats (load: $(cut -d' ' -f1-3 /proc/loadavg))"
			start_server "$name" "$run.server.log"
			# The generator never hangs the script: a run ends within its window plus the join
			# limits, and timeout(1) ends it (the report still comes) if it does not. It runs in
			# the background so that a signal to the script is handled at once, not after it.
			"${gen_prefix[@]}" timeout --kill-after=10 300 "$sanke_bin" loadtest \
				--url "ws://127.0.0.1:$server_port" --api-key "$API_KEY" --api-secret "$API_SECRET" \
				--server-pid "$server_pid" --floor=false --json --quiet "${flags[@]}" \
				>"$run.json" 2>"$run.loadtest.log" &
			gen_pid=$!
			gen_rc=0
			wait "$gen_pid" || gen_rc=$?
			gen_pid=""
			if [ "$gen_rc" != 0 ]; then
				note "$scen $name run $i: sanke loadtest failed:"
				tail -n 5 "$run.loadtest.log" >&2
				rm -f "$run.json"
				failed=$((failed + 1))
			fi
			stop_server
		done
	done
done

# --- 4. Table -------------------------------------------------------------------------------
# One row per scenario and server: "median (min-max)" over the runs of each figure. "video on f"
# is the share of the received video packets that were of the top (720p) layer: servers that
# start subscribers low and move them up forward a lighter load in the same window.
summarize() {
	jq -rs --arg scen "$1" --arg server "$2" '
	def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def fmt(d): if . == null then "-" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
	def stat(f; d): [.[] | f | select(. != null)] |
		if length == 0 then "-"
		elif length == 1 then (.[0] | fmt(d))
		else "\(median | fmt(d)) (\(min | fmt(d))-\(max | fmt(d)))" end;
	"| \($scen) | \($server) | \(length) | " + ([
		stat(.server.forwarded_packets / .window_s; 0),
		stat([.received[] | select(.kind == "video")] |
			if length == 0 then null
			else (map(select(.layer == "f").packets) | add // 0) * 100 / (map(.packets) | add) end; 0),
		stat(.loss.lost; 0),
		stat(.server.cpu_pct; 0),
		stat(.server.cpu_us_per_packet; 2),
		stat(.server.rss_per_subscriber_kib; 0),
		stat(.latency_to_socket[0].p50_ms; 2),
		stat(.latency_to_socket[0].p99_ms; 1),
		stat(.join.first_media.p50_ms; 0),
		stat(.generator.cpu_pct; 0),
		stat(.host.other_cores; 2)
	] | join(" | ")) + " |"' "${@:3}"
}
echo
echo "| run | server | runs | fwd pkt/s | video on f % | lost | server CPU % | **µs/pkt** | RSS KiB/sub | to socket p50 ms | p99 ms | first media p50 ms | generator CPU % | other cores |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for scen in $scenarios; do
	for name in sanke livekit; do
		files=("$out/$scen-$name-"*.json)
		if [ -e "${files[0]}" ]; then
			summarize "$scen" "$name" "${files[@]}"
		else
			echo "| $scen | $name | 0 | (no successful run) |"
		fi
	done
done
[ "$failed" = 0 ] || die "$failed run(s) failed (logs in $out)"
