#!/usr/bin/env bash
# scripts/test.sh — Sanke's test command, for developers and CI alike:
#
#   ./scripts/test.sh            (as root, or as a user with sudo for the package step)
#
# On a Debian 12 machine with Go 1.26 installed it:
#   1. installs the system packages the tests need, only those missing (ffmpeg, redis-server,
#      chromium, firefox-esr, nodejs/npm, iproute2), with apt-get, non-interactively, and Node
#      20.19+ from the npm registry when the system's node is older (Debian 12 has Node 18);
#   2. runs every suite, each whatever the others did:
#        lint          golangci-lint v2.15.0 (.golangci.yml; scripts/golangci-lint.sh builds it
#                      into the tools cache if missing)
#        vet           go vet ./...
#        test/browser  npm ci && npm test: livekit-client in headless Chromium against sanke
#        web-client    npm ci && npm test: bundle check, type check, lint, Vitest, Chromium, Firefox
#        fuzz          every fuzz target for SANKE_FUZZ_TIME
#        go            go test -race ./... (test/e2e/weaklink, which adds a network interface,
#                      alone after the others)
#   3. prints one summary: every suite's result and counts, every skipped test with its reason,
#      and the totals as "tests: N passed, N failed, N skipped".
# It exits non-zero at the end if any suite failed. In CI (CI=true) a Go test whose prerequisite
# (root, CAP_NET_RAW, IPv6, ...) is missing fails instead of skipping (test/prereq).
#
# Environment:
#   SANKE_TEST_VERBOSE=1   print every Go test's output (like go test -v), not only failures'
#   SANKE_TEST_RUN=regexp  only run Go tests matching regexp (go test -run)
#   SANKE_TEST_PKGS="..."  Go packages to test (default ./...; set, it also skips fuzzing)
#   SANKE_FUZZ_TIME=3s     how long each fuzz target explores (0 skips fuzzing)
#   SANKE_SKIP_BROWSER=1   skip the two Node suites (test/browser, web-client)
#   SANKE_SKIP_APT=1       do not touch system packages
#   SANKE_TOOLS_CACHE=dir  where golangci-lint and Node are kept (default ~/.cache; they go
#                          under sanke-tools/ in it, as the recorder tests' versitygw does)
set -uo pipefail
# The whole script is one block, read before it runs: editing this file during a run cannot
# change what the run does.
{

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

# step announces a suite (or a stage); record gives the suite the seconds since its step.
step_started=$SECONDS
step() {
  step_started=$SECONDS
  printf '\n==> %s\n' "$*"
}
warn() { printf 'scripts/test.sh: %s\n' "$*" >&2; }
die() { warn "$*"; exit 1; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

start=$(date +%s)
TOOLS="${SANKE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}}/sanke-tools"
NODE_MIN=20.19.0 # Vite 7 and the web client's tools need Node 20.19+
NODE_PIN=20.20.2 # the Node installed from the npm registry when the system's is older

# --- 1. System packages -------------------------------------------------------------------
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The web client's Firefox tests (web-client/e2e/firefox.test.mjs) drive Debian's Firefox ESR.
command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
# The weak-link tests (test/e2e/weaklink) put a subscriber in a network namespace and shape its
# link with ip and tc.
{ command -v ip && command -v tc; } >/dev/null 2>&1 || missing+=(iproute2)
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi
# A CJK font makes the Chinese text of the web client's screenshots legible.
if [ "${SANKE_SKIP_BROWSER:-}" != 1 ] && command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
  missing+=(fonts-wqy-microhei)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "${SANKE_SKIP_APT:-}" = 1 ]; then
    warn "missing ${missing[*]} (SANKE_SKIP_APT=1: not installing); tests that need them will fail"
  elif [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    warn "missing ${missing[*]}: run as root or install sudo; tests that need them will fail"
  else
    step "installing ${missing[*]}"
    if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null; }; then
      warn "apt-get could not install ${missing[*]}; tests that need them will fail"
    fi
  fi
fi

# --- Go -----------------------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null 2>&1 || die "go is not installed (expected in PATH or /usr/local/go/bin; README.md says how to get Go 1.26)"
go version

# Test binaries of the server are built here, the suites' logs kept here; removed at the end.
SANKE_TEST_BINDIR="$(mktemp -d)"
export SANKE_TEST_BINDIR
trap 'rm -rf "$SANKE_TEST_BINDIR"' EXIT
LOGS="$SANKE_TEST_BINDIR/logs"
mkdir -p "$LOGS"

# --- Results ------------------------------------------------------------------------------
# One entry per suite, in order: its result (passed, failed or skipped), its test counts (empty
# when it has none) and a note. Skipped tests are gathered as "suite: test: reason", failed
# ones as "suite: test".
suites=() results=() passed=() failed=() skipped=() notes=() took=() skip_list=() fail_list=()

# record NAME RESULT PASSED FAILED SKIPPED NOTE
record() {
  suites+=("$1") results+=("$2") passed+=("$3") failed+=("$4") skipped+=("$5") notes+=("$6")
  took+=("$((SECONDS - step_started))s")
}

# version_ge A B: version A >= version B.
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$2" ]; }

# node_counts LOG: "PASSED FAILED SKIPPED" from the closing lines of node --test (TAP "# pass N"
# or spec "ℹ pass N"; cancelled tests count as failed), or nothing if there are none.
node_counts() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
    /^(# |ℹ )(pass|fail|cancelled|skipped) [0-9]+$/ { n[$2] = $3; seen = 1 }
    END { if (seen) print n["pass"] + 0, n["fail"] + n["cancelled"], n["skipped"] + 0 }'
}

# vitest_counts LOG: "PASSED FAILED SKIPPED" from Vitest's "Tests  1 failed | 41 passed | 2 skipped (44)".
vitest_counts() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
    /^ *Tests  / {
      p = f = s = 0; seen = 1
      for (i = 2; i < NF; i++) {
        if ($(i+1) ~ /^passed/) p = $i
        if ($(i+1) ~ /^failed/) f = $i
        if ($(i+1) ~ /^skipped/ || $(i+1) ~ /^todo/) s += $i
      }
    }
    END { if (seen) print p, f, s }'
}

# node_skips SUITE LOG: adds node --test's skipped tests with their reasons to skip_list.
node_skips() {
  local line
  while IFS= read -r line; do
    skip_list+=("$1: $line")
  done < <(sed 's/\x1b\[[0-9;]*m//g' "$2" | sed -nE \
    -e 's/^ *ok [0-9]+ - (.*) # SKIP ?(.*)$/\1: \2/p' \
    -e 's/^ *﹣ (.*) \([0-9.]+m?s\) # (.*)$/\1: \2/p' |
    sed -E 's/: (SKIP)?$/: (no reason given)/')
}

# ensure_node: puts a Node of at least NODE_MIN first in PATH, installing NODE_PIN from the npm
# registry (the node-linux-<arch> package: the official binary) into the tools cache if the
# system's is older. Prints what is needed and fails if it cannot.
ensure_node() {
  local v arch dir
  v="$(node --version 2>/dev/null)"
  v="${v#v}"
  if [ -n "$v" ] && version_ge "$v" "$NODE_MIN"; then
    return 0
  fi
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) warn "Node ${v:-(none)} is older than $NODE_MIN and no Node build is known for $(uname -m): install Node $NODE_MIN+ first in PATH"; return 1 ;;
  esac
  dir="$TOOLS/node-$NODE_PIN"
  if [ ! -x "$dir/node_modules/node-linux-$arch/bin/node" ]; then
    step "Node ${v:-(none)} is older than $NODE_MIN: installing Node $NODE_PIN from the npm registry into $dir"
    if ! command -v npm >/dev/null 2>&1 ||
      ! npm install --no-audit --no-fund --no-save --prefix "$dir" "node-linux-$arch@$NODE_PIN"; then
      warn "could not install Node $NODE_PIN; the web client's tools need Node $NODE_MIN+: put one first in PATH (npm install --prefix DIR node-linux-$arch@$NODE_PIN gives DIR/node_modules/node-linux-$arch/bin/node)"
      return 1
    fi
  fi
  export PATH="$dir/node_modules/node-linux-$arch/bin:$PATH"
  v="$(node --version 2>/dev/null)"
  if ! version_ge "${v#v}" "$NODE_MIN"; then
    warn "$dir holds no working Node $NODE_PIN (node --version: ${v:-nothing}); remove it to install again, or put Node $NODE_MIN+ first in PATH"
    return 1
  fi
  echo "using $(command -v node) $v"
}

# --- 2. Suites ----------------------------------------------------------------------------

# lint: golangci-lint of the pinned version (scripts/golangci-lint.sh builds it if missing).
step "lint: golangci-lint run ./..."
scripts/golangci-lint.sh run ./... 2>&1 | tee "$LOGS/lint.log"
status=${PIPESTATUS[0]}
issues="$(sed -nE 's/^([0-9]+) issues?[.:].*/\1/p' "$LOGS/lint.log" | tail -1)"
if [ "$status" -eq 0 ]; then
  record lint passed "" "" "" "issues: ${issues:-0}"
elif [ -n "$issues" ]; then
  record lint failed "" "" "" "issues: $issues"
else
  record lint failed "" "" "" "exit $status: see its output above"
fi

step "vet: go vet ./..."
if go vet ./...; then
  record vet passed "" "" "" ""
else
  record vet failed "" "" "" "see its output above"
fi

# The two Node suites. Failed tests of test/browser leave screenshots and logs in
# test/browser/artifacts/; the web client's screenshots of every screen are saved in
# web-client/test-artifacts/.
node_ok=1
if [ "${SANKE_SKIP_BROWSER:-}" != 1 ] && ! ensure_node; then
  node_ok=0
fi
for suite in test/browser web-client; do
  if [ "${SANKE_SKIP_BROWSER:-}" = 1 ]; then
    record "$suite" skipped "" "" "" "SANKE_SKIP_BROWSER=1"
    continue
  fi
  if [ "$node_ok" = 0 ]; then
    record "$suite" failed "" "" "" "Node $NODE_MIN+ is needed (see above)"
    continue
  fi
  step "$suite: npm ci && npm test"
  log="$LOGS/$(tr / - <<<"$suite").log"
  # A suite that hangs (a browser or a child that never exits) is stopped after 20 minutes, so
  # the other suites and the summary still come.
  (cd "$suite" && npm ci --no-audit --no-fund && timeout --kill-after=30s 20m npm test) 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  [ "$status" -eq 124 ] && echo "scripts/test.sh: $suite stopped after 20 minutes (hung)" | tee -a "$log"
  counts="$(node_counts "$log")"
  vcounts="$(vitest_counts "$log")"
  if [ -n "$vcounts" ]; then # web-client: Vitest's counts and node --test's together
    read -r p f s <<<"${counts:-0 0 0}"
    read -r vp vf vs <<<"$vcounts"
    counts="$((p + vp)) $((f + vf)) $((s + vs))"
    [ "$vs" -gt 0 ] && skip_list+=("$suite: $vs Vitest test(s) skipped (their names are in its output above)")
  fi
  node_skips "$suite" "$log"
  while IFS= read -r line; do
    fail_list+=("$suite: $line")
  done < <(sed 's/\x1b\[[0-9;]*m//g' "$log" | sed -nE 's/^ *not ok [0-9]+ - (.*)$/\1/p')
  read -r p f s <<<"${counts:-  }"
  if [ "$status" -eq 0 ]; then
    note=""
    [ -z "$counts" ] && note="no test counts in its output"
    record "$suite" passed "${p:-}" "${f:-}" "${s:-}" "$note"
  elif [ -z "$counts" ]; then
    record "$suite" failed "" "" "" "exit $status before any test ran (npm ci, build or bundle check)"
  else
    record "$suite" failed "$p" "$f" "$s" "exit $status"
  fi
done

# fuzz: every fuzz target explores briefly (their committed corpora under testdata/fuzz run as
# plain tests in the go suite).
fuzz_time="${SANKE_FUZZ_TIME:-3s}"
if [ "$fuzz_time" = 0 ]; then
  record fuzz skipped "" "" "" "SANKE_FUZZ_TIME=0"
elif [ -n "${SANKE_TEST_PKGS:-}" ]; then
  record fuzz skipped "" "" "" "SANKE_TEST_PKGS is set"
else
  step "fuzz: every target, ${fuzz_time} each"
  fp=0 ff=0 fuzz_failed=() fuzz_raced=()
  while IFS=: read -r file _ line; do
    pkg="./$(dirname "$file")"
    target="$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")"
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzz_time" -fuzzminimizetime 2s -parallel 2 "$pkg" >"$LOGS/fuzz.log" 2>&1; then
      echo "ok   $pkg $target"
      fp=$((fp + 1))
    elif grep -qx '    context deadline exceeded' "$LOGS/fuzz.log" && ! grep -q 'Failing input written' "$LOGS/fuzz.log"; then
      # Go 1.26's fuzzing coordinator can report its own -fuzztime deadline as a failure on a
      # busy machine (go.dev/issue/75804, fixed in Go 1.27): no input failed, none was written.
      echo "ok   $pkg $target (stopped by Go's fuzztime deadline race, go.dev/issue/75804; no failing input)"
      fp=$((fp + 1)) fuzz_raced+=("$target")
    else
      echo "FAIL $pkg $target"
      tail -30 "$LOGS/fuzz.log"
      ff=$((ff + 1)) fuzz_failed+=("$target")
    fi
  done < <(git grep -n '^func Fuzz' -- '*_test.go')
  if [ "$ff" -eq 0 ]; then
    record fuzz passed "$fp" 0 0 "targets, $fuzz_time each${fuzz_raced[*]:+; ended by go.dev/issue/75804: ${fuzz_raced[*]}}"
  else
    record fuzz failed "$fp" "$ff" 0 "failed: ${fuzz_failed[*]}"
  fi
fi

# go: go test -race through test/testreport, which prints failures in full and writes the
# counts and skip reasons to a file for the summary.
step "go: go test -race"
report_flags=(-totals "$LOGS/go.totals")
[ "${SANKE_TEST_VERBOSE:-}" = 1 ] && report_flags+=(-v)
# Four packages at a time on CI's two cores: most Go tests wait on media that plays in real
# time (a recording needs a 5 MiB part, a class its minutes), so two at a time left the cores
# idle most of the run (12.8 min wall for 7 min of CPU; 8 min at four).
test_flags=(-race -count=1 -timeout 15m -json -p "${SANKE_TEST_PARALLEL:-4}")
[ -n "${SANKE_TEST_RUN:-}" ] && test_flags+=(-run "$SANKE_TEST_RUN")
# Packages that add network interfaces to the host (test/e2e/weaklink: a veth pair into a network
# namespace) run alone after the others: every other test's clients gather candidates on all
# interfaces, and one that vanishes mid-test takes its ICE pair with it.
serial_pkgs="./test/e2e/weaklink"
if [ -n "${SANKE_TEST_PKGS:-}" ]; then
  main_pkgs="$SANKE_TEST_PKGS"
  serial_pkgs=""
else
  main_pkgs="$(go list ./... | grep -v '/e2e/weaklink$' | tr '\n' ' ')"
fi
if ! go build -o "$SANKE_TEST_BINDIR/testreport" ./test/testreport; then
  record go failed "" "" "" "test/testreport does not build"
else
  # shellcheck disable=SC2086 # the package lists are word lists
  {
    go test "${test_flags[@]}" $main_pkgs
    echo $? >"$SANKE_TEST_BINDIR/status-main"
    if [ -n "$serial_pkgs" ]; then
      go test "${test_flags[@]}" $serial_pkgs
      echo $? >"$SANKE_TEST_BINDIR/status-serial"
    fi
  } 2>&1 | "$SANKE_TEST_BINDIR/testreport" "${report_flags[@]}"
  report_status=$?
  test_status=$(cat "$SANKE_TEST_BINDIR/status-main")
  if [ -f "$SANKE_TEST_BINDIR/status-serial" ] && [ "$test_status" -eq 0 ]; then
    test_status=$(cat "$SANKE_TEST_BINDIR/status-serial")
  fi
  gp="" gf="" gs="" gnote=""
  if [ -f "$LOGS/go.totals" ]; then
    while IFS=$'\t' read -r kind a b; do
      case "$kind" in
        passed) gp=$a ;;
        failed) gf=$a ;;
        skipped) gs=$a ;;
        failed-test) fail_list+=("go: $a${b:+: $b}") ;;
        failed-package) gnote="${gnote:+$gnote, }package $a failed" ;;
        skip) skip_list+=("go: $a: $b") ;;
      esac
    done <"$LOGS/go.totals"
  fi
  if [ "$test_status" -eq 0 ] && [ "$report_status" -eq 0 ]; then
    record go passed "$gp" "$gf" "$gs" "$gnote"
  else
    record go failed "$gp" "$gf" "$gs" "${gnote:-go test exit $test_status}"
  fi
fi

# --- 3. Summary ---------------------------------------------------------------------------
elapsed=$(($(date +%s) - start))
step "summary"
tp=0 tf=0 ts=0 failed_suites=()
for i in "${!suites[@]}"; do
  counts=""
  if [ -n "${passed[$i]}" ]; then
    counts="${passed[$i]} passed, ${failed[$i]} failed, ${skipped[$i]} skipped"
    tp=$((tp + passed[i])) tf=$((tf + failed[i])) ts=$((ts + skipped[i]))
  fi
  printf '%-13s %-8s %6s  %s%s\n' "${suites[$i]}" "${results[$i]}" "${took[$i]}" "$counts" \
    "${notes[$i]:+${counts:+ }(${notes[$i]})}"
  [ "${results[$i]}" = failed ] && failed_suites+=("${suites[$i]}")
done
if [ "${#fail_list[@]}" -gt 0 ]; then
  echo
  echo "failed tests:"
  printf '  %s\n' "${fail_list[@]}"
fi
if [ "${#skip_list[@]}" -gt 0 ]; then
  echo
  echo "skipped tests:"
  printf '  %s\n' "${skip_list[@]}"
fi
echo
if [ "${#failed_suites[@]}" -gt 0 ]; then
  echo "scripts/test.sh: FAILED (${failed_suites[*]}) after ${elapsed}s"
  status=1
else
  echo "scripts/test.sh: all suites passed in ${elapsed}s"
  status=0
fi
echo "tests: $tp passed, $tf failed, $ts skipped"
exit "$status"
}
