#!/usr/bin/env bash
# scripts/ttff-bench.sh — time to first decoded frame of a @livekit/rtc-node subscriber
# (libwebrtc), Sanke against livekit-server 1.13.5, back to back on this host.
#
#   ./scripts/ttff-bench.sh [-n RUNS] [-l "loopback rtt300"] [-o DIR] [--sanke-bin PATH] [--timeline]
#
# It
#   1. builds sanke from this checkout (or takes --sanke-bin), the Go file publisher
#      (test/browser/filepublisher) and, once, livekit-server 1.13.5 into the cache that
#      scripts/bench-livekit.sh uses; installs test/ttff's npm package (@livekit/rtc-node 1.1.0);
#   2. starts both servers on loopback and one publisher in each (the same pre-encoded VP8
#      simulcast file, which answers a keyframe request by jumping to the file's next keyframe:
#      no encoder in the measurement), and for the link "rtt300" a `sanke linksim` relay with
#      150 ms each way (the subscriber forced to relay-only ICE through it);
#   3. runs one subscriber per server that is not counted (the first start of node and the
#      SDK's native library is slow on a cold cache: it went to whichever server came first),
#      then RUNS subscribers per link and server, alternating the servers run by run (Sanke
#      first in odd runs, LiveKit first in even ones), each a fresh process joining with a new
#      identity (test/ttff/ttff.mjs), and prints, per link and server, p50 and min-max of:
#      connect() resolved, TrackSubscribed, first decoded frame.
#
# Options:
#   -n N           runs per link and server (default 5)
#   -l LIST        links, space-separated: loopback, rtt300 (default both)
#   -o DIR         keep every run's line and the server logs in DIR (default: a temp dir)
#   --sanke-bin P  measure this sanke binary instead of building one (e.g. an older commit)
#   --timeline     both servers log at debug level, and a second table lines their logs up
#                  with each run's client marks: per run, ms from the client's t0 to the join,
#                  the answer, the client's first ICE candidate, ICE connected (Sanke: the
#                  selected pair), DTLS connected, the first keyframe request and the first
#                  keyframe sent (Sanke's "ttff:" lines; LiveKit's own debug messages)
# Environment:
#   SANKE_TOOLS      cache of built tools (default ~/.cache/sanke-tools)
#   TTFF_BASE_PORT   first of the ports used (default 17960: sanke +0/+2, livekit +10/+12,
#                    linksim +20)
# Needs: go, node 20+, npm, jq.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
API_KEY=ttffkey
API_SECRET=ttff-secret-0123456789abcdef0123456789abcdef
ROOM=ttff
RELAY_USER=ttff
RELAY_PASS=ttff-relay-password
START_TIMEOUT=60

die() { printf 'ttff-bench: %s\n' "$*" >&2; exit 1; }
note() { printf 'ttff-bench: %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/livekit.sh
. "$ROOT/scripts/lib/livekit.sh"

runs=5
links="loopback rtt300"
out=""
sanke_bin=""
timeline=0
while [ $# -gt 0 ]; do
	case "$1" in
	-n) runs="${2:?-n needs a number}"; shift 2 ;;
	-l) links="${2:?-l needs a list}"; shift 2 ;;
	-o) out="${2:?-o needs a directory}"; shift 2 ;;
	--sanke-bin) sanke_bin="${2:?--sanke-bin needs a path}"; shift 2 ;;
	--timeline) timeline=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number, not $runs"
for l in $links; do
	case "$l" in loopback | rtt300) ;; *) die "unknown link $l (loopback, rtt300)" ;; esac
done
for c in go node npm jq; do command -v "$c" >/dev/null || die "$c is not installed"; done

work="$(mktemp -d "${TMPDIR:-/tmp}/ttff-bench.XXXXXX")"
[ -n "$out" ] || out="$work/out"
mkdir -p "$out"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[ "$out" = "$work/out" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. Binaries and the subscriber ----------------------------------------------------------
lk_bin="$(livekit_server "$work")"
if [ -z "$sanke_bin" ]; then
	sanke_bin="$work/sanke"
	(cd "$ROOT" && go build -o "$sanke_bin" ./cmd/sanke) || die "building sanke failed"
fi
[ -x "$sanke_bin" ] || die "$sanke_bin is not executable"
(cd "$ROOT" && go build -o "$work/filepublisher" ./test/browser/filepublisher) || die "building the file publisher failed"
# The tools: the linksim relay and the tokens come from this checkout's sanke whatever is measured.
tool_bin="$work/sanke-tool"
(cd "$ROOT" && go build -o "$tool_bin" ./cmd/sanke) || die "building sanke failed"
if [ ! -d "$ROOT/test/ttff/node_modules/@livekit/rtc-node" ]; then
	note "installing test/ttff (npm ci)"
	(cd "$ROOT/test/ttff" && npm ci --no-audit --no-fund >/dev/null) || die "npm ci in test/ttff failed"
fi

# --- 2. Servers, publishers, relay -----------------------------------------------------------
base="${TTFF_BASE_PORT:-17960}"
sanke_port=$base
lk_port=$((base + 10))
relay_port=$((base + 20))
level=warn
[ "$timeline" = 0 ] || level=debug
sanke_config "$work/sanke.yaml" "$sanke_port" $level "$work/sanke-data"
cat >"$work/livekit.yaml" <<EOF
port: $lk_port
bind_addresses: ["127.0.0.1"]
rtc:
  udp_port: $((lk_port + 2))
  tcp_port: 0
  use_external_ip: false
  node_ip: 127.0.0.1
  enable_loopback_candidate: true
  # Loopback only, as Sanke's bind_addresses: a host's other addresses (an IPv6 one a test
  # added, say) become candidates a relay-only client cannot reach, and its ICE then failed.
  ips:
    includes: [127.0.0.1/32]
keys:
  $API_KEY: $API_SECRET
logging:
  level: $level
EOF


# start NAME PORT LOG CMD...: starts a process in the background, waits for its TCP port.
start() {
	local name="$1" port="$2" log="$3"
	shift 3
	port_open "$port" && die "port $port is already in use (set TTFF_BASE_PORT)"
	"$@" >"$log" 2>&1 &
	local pid=$!
	pids+=("$pid")
	local deadline=$((SECONDS + START_TIMEOUT))
	until port_open "$port"; do
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "$name exited (log: $log)"; }
		[ "$SECONDS" -lt "$deadline" ] || die "$name did not answer on port $port within ${START_TIMEOUT}s"
		sleep 0.2
	done
}

token() {
	"$tool_bin" token --api-key "$API_KEY" --api-secret "$API_SECRET" --room "$ROOM" --identity "$1" --grants "$2"
}

# publish NAME PORT: the file publisher joins the server's room; waits until it published.
publish() {
	local name="$1" port="$2" fifo="$work/$1.pub.in"
	mkfifo "$fifo"
	# Its stdin stays open (the fifo held by a sleeping writer): it leaves when that ends.
	sleep infinity >"$fifo" &
	pids+=("$!")
	"$work/filepublisher" -url "ws://127.0.0.1:$port" -token "$(token "pub-$name" join,publish)" \
		<"$fifo" >"$out/$name.pub.out" 2>"$out/$name.pub.log" &
	pids+=("$!")
	local deadline=$((SECONDS + START_TIMEOUT))
	until grep -q '"published"' "$out/$name.pub.out" 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || { tail -n 20 "$out/$name.pub.log" >&2; die "the publisher on $name did not publish"; }
		sleep 0.2
	done
}

start sanke "$sanke_port" "$out/sanke.log" "$sanke_bin" serve --config "$work/sanke.yaml"
start livekit "$lk_port" "$out/livekit.log" "$lk_bin" --config "$work/livekit.yaml"
publish sanke "$sanke_port"
publish livekit "$lk_port"
case " $links " in *" rtt300 "*)
	start linksim "$relay_port" "$out/linksim.log" "$tool_bin" linksim --listen "127.0.0.1:$relay_port" \
		--delay 150ms --user "$RELAY_USER" --password "$RELAY_PASS" --stats-every 0
	;;
esac

# --- 3. Runs ---------------------------------------------------------------------------------
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
	echo "sanke: $sanke_bin ($("$sanke_bin" version 2>/dev/null | head -n1)); livekit-server $LK_VERSION; @livekit/rtc-node 1.1.0"
	echo "runs: $runs; links: $links; results: $out"
} | tee "$out/README" >&2
# Let both publishers run through a keyframe interval before the first subscriber.
sleep 3
for name in sanke livekit; do
	port=$sanke_port
	[ "$name" = sanke ] || port=$lk_port
	note "warm-up run on $name (not counted)"
	timeout --kill-after=5 60 node "$ROOT/test/ttff/ttff.mjs" --url "ws://127.0.0.1:$port" \
		--token "$(token "warmup-$name" join,subscribe)" >"$out/warmup-$name.log" 2>&1 ||
		note "  warm-up failed: $(tail -n 3 "$out/warmup-$name.log")"
	sleep 1
done
failed=0
for link in $links; do
	relay=()
	[ "$link" = loopback ] || relay=(--relay "turn:127.0.0.1:$relay_port?transport=udp" --user "$RELAY_USER" --pass "$RELAY_PASS")
	for i in $(seq "$runs"); do
		order="sanke livekit"
		[ $((i % 2)) = 1 ] || order="livekit sanke"
		for name in $order; do
			port=$sanke_port
			[ "$name" = sanke ] || port=$lk_port
			id="sub-$link-$i"
			note "$link $name run $i/$runs (load: $(cut -d' ' -f1-3 /proc/loadavg))"
			if timeout --kill-after=5 60 node "$ROOT/test/ttff/ttff.mjs" --url "ws://127.0.0.1:$port" \
				--token "$(token "$id" join,subscribe)" "${relay[@]}" >"$out/$link-$name-$i.log" 2>&1; then
				sed -n 's/^TTFF //p' "$out/$link-$name-$i.log" >"$out/$link-$name-$i.json"
				note "  $(cat "$out/$link-$name-$i.json")"
			else
				note "  failed: $(tail -n 3 "$out/$link-$name-$i.log")"
				failed=$((failed + 1))
			fi
			sleep 1 # the server sees the subscriber leave before the next one joins
		done
	done
done

# --- 4. Table --------------------------------------------------------------------------------
stat() {
	jq -rs --arg f "$1" '
	def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	[.[] | .[$f]] | "\(median | round) (\(min | round)-\(max | round))"' "${@:2}"
}
echo
echo "| link | server | runs | connect ms | TrackSubscribed ms | **first frame ms** |"
echo "| --- | --- | --- | --- | --- | --- |"
for link in $links; do
	for name in sanke livekit; do
		files=("$out/$link-$name-"*.json)
		if [ -e "${files[0]}" ]; then
			echo "| $link | $name | ${#files[@]} | $(stat connect_ms "${files[@]}") | $(stat subscribed_ms "${files[@]}") | $(stat first_frame_ms "${files[@]}") |"
		else
			echo "| $link | $name | 0 | (no successful run) | | |"
		fi
	done
done

# --- 5. Timeline (--timeline) ----------------------------------------------------------------
# marks SERVER ID T0: the server's marks of subscriber ID, ms after the client's t0 (unix ms),
# from its debug log: join, answer, first client candidate, ICE, DTLS, keyframe request, first
# keyframe sent ("-" where the log has none). Times are compared as ms of the UTC day.
marks() {
	local log="$out/$1.log" fmt=sanke
	[ "$1" = sanke ] || fmt=livekit
	awk -v fmt="$fmt" -v id="$2" -v t0="$3" '
	function ms(ts,  p) { split(substr(ts, 12, 12), p, ":"); return (p[1] * 3600 + p[2] * 60 + p[3]) * 1000 }
	function mark(k, ts) { if (!(k in at)) at[k] = ms(ts) - t0 % 86400000 }
	fmt == "sanke" && index($0, "identity=" id " ") {
		ts = substr($1, 6)
		if (index($0, "msg=\"ttff: joined\"")) mark("join", ts)
		if (index($0, "msg=\"ttff: answer made\"") || index($0, "msg=\"ttff: offer sent\"")) mark("sdp", ts)
		if (index($0, "msg=\"ttff: candidate received\"")) mark("cand", ts)
		if (index($0, "msg=\"ttff: selected pair\"")) mark("ice", ts)
		if (index($0, "msg=\"ttff: dtls connected\"")) mark("dtls", ts)
		if (index($0, "msg=\"ttff: first keyframe requested\"")) mark("pli", ts)
		if (index($0, "msg=\"ttff: first packet forwarded\"") && index($0, "keyframe=true")) mark("key", ts)
	}
	fmt == "livekit" && index($0, "\"participant\": \"" id "\"") {
		split($0, f, "\t"); ts = f[1]; msg = f[5]
		if (msg == "processing join request") mark("join", ts)
		if (msg == "sending answer") mark("sdp", ts)
		if (msg == "added ICE candidate") mark("cand", ts)
		if (msg == "ice connection state change" && index($0, "\"state\": \"connected\"")) mark("ice", ts)
		if (msg == "peer connection state change" && index($0, "\"state\": \"connected\"")) mark("dtls", ts)
		if (index(msg, "sending PLI") == 1) mark("pli", ts)
		if (msg == "forwarded key frame") mark("key", ts)
	}
	END {
		n = split("join sdp cand ice dtls pli key", k, " ")
		for (i = 1; i <= n; i++) printf "%s%s", (k[i] in at ? sprintf("%.0f", at[k[i]]) : "-"), (i < n ? " | " : "")
	}' "$log"
}
if [ "$timeline" = 1 ]; then
	echo
	echo "Timeline, ms from the client's t0 (server marks from its debug log; client marks from ttff.mjs):"
	echo
	echo "| link | server | run | join | answer | client candidate | ICE | DTLS | keyframe request | keyframe sent | connect | TrackSubscribed | **first frame** |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for link in $links; do
		for name in sanke livekit; do
			for i in $(seq "$runs"); do
				f="$out/$link-$name-$i.json"
				[ -e "$f" ] || continue
				echo "| $link | $name | $i | $(marks "$name" "sub-$link-$i" "$(jq -r .t0_unix_ms "$f")") | $(jq -r '"\(.connect_ms | round) | \(.subscribed_ms | round) | **\(.first_frame_ms | round)**"' "$f") |"
			done
		done
	done
fi
[ "$failed" = 0 ] || die "$failed run(s) failed (logs in $out)"
