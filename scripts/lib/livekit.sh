# shellcheck shell=bash
# scripts/lib/livekit.sh — sourced by the scripts that measure Sanke against livekit-server
# (bench-livekit.sh, ttff-bench.sh). The sourcing script defines note and die.

# LK_VERSION is the livekit-server release the comparisons run against.
LK_VERSION=1.13.5

# livekit_server WORKDIR prints the path of livekit-server $LK_VERSION, built once with
# `go install` into the tools cache ($SANKE_TOOLS, default ~/.cache/sanke-tools): nothing of
# LiveKit is in the repository. WORKDIR is where go install runs (outside this module).
livekit_server() {
	local dir="${SANKE_TOOLS:-$HOME/.cache/sanke-tools}/livekit-$LK_VERSION"
	local bin="$dir/server"
	if ! { [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "version $LK_VERSION\$"; }; then
		note "building livekit-server $LK_VERSION into $dir (a few minutes)"
		mkdir -p "$dir"
		(cd "$1" && GOBIN="$dir" go install "github.com/livekit/livekit-server/cmd/server@v$LK_VERSION") ||
			die "go install of livekit-server $LK_VERSION failed"
		"$bin" --version | grep -q "version $LK_VERSION\$" || die "$bin is not livekit-server $LK_VERSION"
	fi
	echo "$bin"
}

# sanke_config FILE PORT LEVEL DATA writes a dev-mode Sanke configuration for a comparison run:
# signaling on 127.0.0.1:PORT, UDP media on PORT+2, no ICE-TCP, logs at LEVEL, data in DATA.
sanke_config() {
	cat >"$1" <<EOF
dev: true
port: $2
bind_addresses: ["127.0.0.1"]
data_dir: $4
keys:
  $API_KEY: $API_SECRET
rtc:
  udp_port: $(($2 + 2))
  tcp_port: 0
log:
  level: $3
EOF
}

# port_open PORT says whether something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
