#!/usr/bin/env bash
# scripts/rural-bench.sh — issue 14's rural links, Sanke against LiveKit server 1.13.5, as a
# child in a rural classroom sees and hears them: a Chromium receiver forced through
# `sanke linksim` (an impairing TURN relay: loss, bursts, delay, rate, a rate schedule), its
# getStats() sampled every 250 ms and turned into a report (test/browser/lib/report.mjs).
#
#   ./scripts/rural-bench.sh [-n RUNS] [-w WINDOW_S] [-d DROP_S] [-s SCENARIOS] [-S SERVERS] [-p chromium|file] [-o DIR]
#
# Scenarios (test/browser/lib/rural.mjs; delay is one way):
#   clean    0% loss (control), 50 ms each way, 3 Mbit/s
#   loss20   20% random loss, 50 ms each way, 3 Mbit/s
#   thin1m   1 Mbit/s, 25 ms each way, 2% loss
#   drop     3 Mbit/s, 25 ms each way, falling to 500 kbit/s for DROP_S and back
#   bursty   Gilbert-Elliott loss, 10% average in 50 ms bursts, 50 ms each way, 3 Mbit/s
#   uplink   the other way round: the publisher (a Chromium pupil) through the relay, 50 ms each
#            way, 3 Mbit/s falling to 1 Mbit/s with 5% loss; the receiver (the teacher) on a
#            clean link; the window starts once the publisher sends under the line
# Each run: a fresh server (sanke from this checkout, then livekit-server), a room, the
# publisher on a clean link (default: a Chromium page, fake camera 1280x720 simulcast q/h/f and
# fake microphone; -p file: test/browser/filepublisher's pre-encoded layers), the receiver
# (Chromium, default Room options, a 1280x720 element) through a fresh relay. The window starts
# 5 s after the receiver's first frame. Runs go back to back, servers alternating.
#
# Options:
#   -n N      runs per scenario and server (default 3)
#   -w S      window in seconds (default 45)
#   -d S      how long the drop scenario's line stays at 500 kbit/s (default 60)
#   -s LIST   scenarios, comma-separated (default clean,loss20,thin1m,drop,bursty,uplink)
#   -S LIST   servers, comma-separated (default sanke,livekit; sanke alone halves the time)
#   -p KIND   publisher: chromium (default) or file
#   -o DIR    keep the runs' JSON and table.md in DIR (default: a new temporary directory)
# Environment: SANKE_TOOLS (cache of built tools, default ~/.cache/sanke-tools), SANKE_CHROMIUM.
# Needs: go, node 20+, npm, chromium.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LK_VERSION=1.13.5

die() { printf 'rural-bench: %s\n' "$*" >&2; exit 1; }

runs=3
window=45
drop=60
scenarios=clean,loss20,thin1m,drop,bursty,uplink
publisher=chromium
servers=sanke,livekit
out=""
while [ $# -gt 0 ]; do
	case "$1" in
	-n) runs="${2:?-n needs a number}"; shift 2 ;;
	-w) window="${2:?-w needs seconds}"; shift 2 ;;
	-d) drop="${2:?-d needs seconds}"; shift 2 ;;
	-s) scenarios="${2:?-s needs a list}"; shift 2 ;;
	-S) servers="${2:?-S needs a list}"; shift 2 ;;
	-p) publisher="${2:?-p needs chromium or file}"; shift 2 ;;
	-o) out="${2:?-o needs a directory}"; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
command -v go >/dev/null || die "go is not installed"
command -v node >/dev/null || die "node is not installed"

# livekit-server is built once outside the repository, as scripts/bench-livekit.sh does.
lk_dir="${SANKE_TOOLS:-$HOME/.cache/sanke-tools}/livekit-$LK_VERSION"
lk_bin="$lk_dir/server"
if ! { [ -x "$lk_bin" ] && "$lk_bin" --version 2>/dev/null | grep -q "version $LK_VERSION\$"; }; then
	printf 'rural-bench: building livekit-server %s into %s (a few minutes)\n' "$LK_VERSION" "$lk_dir" >&2
	mkdir -p "$lk_dir"
	(cd "$(mktemp -d)" && GOBIN="$lk_dir" go install "github.com/livekit/livekit-server/cmd/server@v$LK_VERSION") ||
		die "go install of livekit-server $LK_VERSION failed"
fi

cd "$ROOT/test/browser"
[ -d node_modules ] || npm ci --no-audit --no-fund
node build.mjs
args=(--livekit "$lk_bin" --runs "$runs" --window "$window" --drop "$drop" --scenarios "$scenarios" --servers "$servers" --publisher "$publisher")
[ -z "$out" ] || args+=(--out "$out")
exec node bench/rural.mjs "${args[@]}"
