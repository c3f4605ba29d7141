#!/usr/bin/env bash
# scripts/test.sh — Sanke's test command, for developers and CI alike:
#
#   ./scripts/test.sh            (as root, or as a user with sudo for the package step)
#
# On a Debian 12 machine with Go installed it:
#   1. installs the system packages the tests need, only those missing (ffmpeg, redis-server,
#      chromium, firefox-esr, nodejs/npm, iproute2), with apt-get, non-interactively;
#   2. runs go vet ./...;
#   3. (browser tests go here, see below);
#   4. runs go test -race over every package (test/e2e/weaklink, which adds a network interface,
#      alone after the others) and prints a summary.
# It exits non-zero if any step fails.
#
# Environment:
#   SANKE_TEST_VERBOSE=1   print every test's output (like go test -v), not only failures'
#   SANKE_TEST_RUN=regexp  only run tests matching regexp (go test -run)
#   SANKE_TEST_PKGS="..."  packages to test (default ./...)
#   SANKE_SKIP_APT=1       do not touch system packages
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

start=$(date +%s)

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

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "${SANKE_SKIP_APT:-}" = 1 ]; then
    echo "warning: missing ${missing[*]} (SANKE_SKIP_APT=1: not installing); tests that need them will fail" >&2
  else
    step "installing ${missing[*]}"
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run as root or install sudo"
      SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
  fi
fi

# --- Go -----------------------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null 2>&1 || die "go is not installed (expected in PATH or /usr/local/go/bin)"
go version

# Test binaries of the server are built here and removed at the end.
SANKE_TEST_BINDIR="$(mktemp -d)"
export SANKE_TEST_BINDIR
trap 'rm -rf "$SANKE_TEST_BINDIR"' EXIT

# --- 2. Vet -------------------------------------------------------------------------------
step "go vet ./..."
go vet ./...

# --- 3. Browser tests ---------------------------------------------------------------------
# Later issues add the web client's tests here, e.g.:
#   step "web-client: npm ci && npm test"
#   (cd web-client && npm ci --no-audit --no-fund && npm test)
# They run before the Go tests so that a broken client fails fast.
# test/browser/: the npm livekit-client in headless Chromium against a freshly built sanke
# (issue 3). Failed tests leave screenshots and logs in test/browser/artifacts/.
# SANKE_SKIP_BROWSER=1 skips them.
if [ "${SANKE_SKIP_BROWSER:-}" = 1 ]; then
  echo "warning: SANKE_SKIP_BROWSER=1: not running test/browser/" >&2
else
  step "test/browser: npm ci && npm test (livekit-client in headless Chromium)"
  (cd test/browser && npm ci --no-audit --no-fund && npm test)
fi
# web-client/: the web client (issue 6). `npm test` checks that the committed bundle
# (web-client/dist, embedded in the binary) is built from the current sources, runs the Vitest
# unit tests, then the browser tests against a freshly built sanke: headless Chromium (desktop
# and an emulated tablet) and Firefox ESR (puppeteer-core over WebDriver BiDi; firefox-esr is
# installed in step 1); screenshots of every screen are saved in web-client/test-artifacts/.
# A CJK font makes them legible. SANKE_SKIP_BROWSER=1 skips them too.
if [ "${SANKE_SKIP_BROWSER:-}" = 1 ]; then
  echo "warning: SANKE_SKIP_BROWSER=1: not running web-client/ tests" >&2
else
  if [ "${SANKE_SKIP_APT:-}" != 1 ] && command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
    step "installing fonts-wqy-microhei (Chinese text in the web client's screenshots)"
    FONT_SUDO=()
    [ "$(id -u)" -ne 0 ] && FONT_SUDO=(sudo)
    "${FONT_SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-wqy-microhei >/dev/null ||
      echo "warning: could not install fonts-wqy-microhei; screenshots will show boxes for Chinese text" >&2
  fi
  step "web-client: npm ci && npm test (bundle check, unit tests, headless Chromium and Firefox)"
  (cd web-client && npm ci --no-audit --no-fund && npm test)
fi

# --- Fuzzing ------------------------------------------------------------------------------
# Every fuzz target runs briefly (its committed corpus under testdata/fuzz already runs as
# plain tests in step 4). SANKE_FUZZ_TIME sets how long each one explores (default 5s; 0 skips).
fuzz_failed=()
fuzz_time="${SANKE_FUZZ_TIME:-5s}"
if [ "$fuzz_time" != 0 ] && [ -z "${SANKE_TEST_PKGS:-}" ]; then
  step "fuzz targets, ${fuzz_time} each"
  while IFS=: read -r file _ line; do
    pkg="./$(dirname "$file")"
    target="$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")"
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzz_time" -fuzzminimizetime 2s -parallel 2 "$pkg" >"$SANKE_TEST_BINDIR/fuzz.log" 2>&1; then
      echo "ok   $pkg $target"
    else
      echo "FAIL $pkg $target"; tail -30 "$SANKE_TEST_BINDIR/fuzz.log"
      fuzz_failed+=("$pkg $target")
    fi
  done < <(git grep -n '^func Fuzz' -- '*_test.go')
fi

# --- 4. Go tests --------------------------------------------------------------------------
step "go test -race"
go build -o "$SANKE_TEST_BINDIR/testreport" ./test/testreport
report_flags=()
[ "${SANKE_TEST_VERBOSE:-}" = 1 ] && report_flags+=(-v)
test_flags=(-race -count=1 -timeout 15m -json)
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
# shellcheck disable=SC2086 # the package lists are word lists
set +e
{
  go test "${test_flags[@]}" $main_pkgs
  echo $? >"$SANKE_TEST_BINDIR/status-main"
  if [ -n "$serial_pkgs" ]; then
    go test "${test_flags[@]}" $serial_pkgs
    echo $? >"$SANKE_TEST_BINDIR/status-serial"
  fi
} 2>&1 | "$SANKE_TEST_BINDIR/testreport" "${report_flags[@]}"
report_status=$?
set -e
test_status=$(cat "$SANKE_TEST_BINDIR/status-main")
if [ -f "$SANKE_TEST_BINDIR/status-serial" ] && [ "$test_status" -eq 0 ]; then
  test_status=$(cat "$SANKE_TEST_BINDIR/status-serial")
fi

elapsed=$(( $(date +%s) - start ))
if [ "${#fuzz_failed[@]}" -gt 0 ]; then
  echo "scripts/test.sh: fuzz targets failed: ${fuzz_failed[*]}"
  test_status=1
fi
if [ "$test_status" -ne 0 ] || [ "$report_status" -ne 0 ]; then
  echo "scripts/test.sh: FAILED after ${elapsed}s (go test exit ${test_status}, report exit ${report_status})"
  exit 1
fi
echo "scripts/test.sh: all passed in ${elapsed}s"
