#!/usr/bin/env bash
# Smoke test of a macOS build of Concord: an app bundle (dist/Concord.app, or a copy "installed"
# into an Applications folder) or the disk image itself.
#
#   packaging/macos/smoke.sh dist/concord-0.1.0-macos-arm64.dmg
#   packaging/macos/smoke.sh /Applications/Concord.app
#
# The macOS counterpart of packaging/smoke.sh (Linux) and packaging/windows/smoke.ps1. A .dmg is
# attached read-only, without Finder (hdiutil attach -nobrowse -readonly) on a private mount
# point; the app is run from the mounted volume, and the image is detached at exit. Steps, each
# timed; all run, and any failure is reported (an error annotation on GitHub Actions) and makes the
# script exit 1: the volume holds an /Applications symlink (dmg); the signature verifies (and,
# when asked, Gatekeeper accepts it); the bundle id and main executable; the architecture (when
# asked); `concord --version` and `concord-server --version` print the same version;
# `concord --self-test --report FILE` offscreen exits 0, "all checks passed", with the app id and
# version in the report; the server on a free loopback port answers GET /api/v1/health with 200
# and its version, then stops on SIGTERM with exit code 0; and the budgets, as on Linux: the
# median of 5 warm runs (after one warm-up run) of
#   concord --version, concord-server --version  <= $CONCORD_BUDGET_VERSION_S   (default 1 s)
#   concord --self-test                          <= $CONCORD_BUDGET_SELFTEST_S  (default 3 s)
# Every child runs with a private HOME and TMPDIR.
#
# Environment (as packaging/smoke.sh where the names are shared):
#   CONCORD_BUDGET_VERSION_S, CONCORD_BUDGET_SELFTEST_S   the budgets above
#   CONCORD_EXPECT_VERSION     if set, both executables must report this version
#   CONCORD_EXPECT_ARCH        if set (arm64 / x86_64), the executables must include it
#   CONCORD_EXPECT_NOTARIZED   if 1, Gatekeeper must accept the app (and the dmg's ticket)
#   CONCORD_SMOKE_SERVER_TIMEOUT_S  bounds the server's start (default 30 s)
# Why the budgets are larger than Linux's (0.3 s and 1.5 s): GitHub's macOS runners are small
# shared VMs with slow disks, and every start pays for the kernel's signature checks of each
# Mach-O it loads (Python, the extension modules, Qt's frameworks), more of them than the trimmed
# Linux bundle has. The budgets still catch what they are for: an import or a check that makes
# start-up seconds slower.
set -euo pipefail

APP_ID=io.github.concordchat.Concord # desktop.identity.APP_ID (the packaging test checks it)

[ $# -eq 1 ] || {
  echo "usage: $0 Concord.app|concord-VERSION-macos-ARCH.dmg" >&2
  exit 2
}
target=${1%/}
selftest_budget=${CONCORD_BUDGET_SELFTEST_S:-3}
version_budget=${CONCORD_BUDGET_VERSION_S:-1}
budget_runs=5
server_timeout=${CONCORD_SMOKE_SERVER_TIMEOUT_S:-30}
expect_version=${CONCORD_EXPECT_VERSION:-}
expect_arch=${CONCORD_EXPECT_ARCH:-}
expect_notarized=${CONCORD_EXPECT_NOTARIZED:-0}

work=$(mktemp -d /tmp/cs.XXXXXX)  # short: the app's bus socket path must stay under 100 bytes
work=$(cd "$work" && pwd -P)
mounted=""
server_pid=""
failures=0
results=$work/results.txt
: >"$results"

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$mounted" ]; then
    hdiutil detach "$mounted" -quiet 2>/dev/null || hdiutil detach "$mounted" -force -quiet || true
  fi
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

now() { perl -MTime::HiRes=time -e 'printf "%.3f\n", time'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
over() { awk -v t="$1" -v b="$2" 'BEGIN { exit !(t > b) }'; }
plist_get() { /usr/libexec/PlistBuddy -c "Print :$1" "$app/Contents/Info.plist"; }

# A step sets $detail and returns 0 (pass) or 1 (fail); run_step times it and records the result.
detail=""
run_step() {
  local name=$1 fn=$2 t0 t1 took
  echo "--- $name"
  detail=""
  t0=$(now)
  if "$fn"; then status=PASS; else status=FAIL; fi
  t1=$(now)
  took=$(elapsed "$t0" "$t1")
  printf '%s\t%s\t%s\t%s\n' "$status" "$took" "$name" "$detail" >>"$results"
  if [ "$status" = FAIL ]; then
    failures=$((failures + 1))
    if [ "${GITHUB_ACTIONS:-}" = true ]; then
      echo "::error title=macOS smoke::$name: $(printf '%s' "$detail" | tr '\n' ' ')"
    fi
    echo "FAIL: $name: $detail" >&2
  else
    echo "ok: $detail"
  fi
}

# run_timed OUTFILE CMD...: runs CMD with stdout+stderr to OUTFILE; sets $rc and $took. CMD is
# killed after $CONCORD_SMOKE_TIMEOUT_S (default 60) s: macOS has no timeout(1), so perl's alarm,
# which survives its exec, bounds it (status 142 then).
run_timed() {
  local out=$1 t0 t1
  shift
  t0=$(now)
  rc=0
  perl -e 'alarm shift; exec @ARGV or die "exec: $!\n"' "${CONCORD_SMOKE_TIMEOUT_S:-60}" "$@" \
    >"$out" 2>&1 </dev/null || rc=$?
  t1=$(now)
  took=$(elapsed "$t0" "$t1")
}

# --- where the app is ------------------------------------------------------------------------
case $target in
  *.dmg)
    [ -f "$target" ] || {
      echo "error: no such disk image: $target" >&2
      exit 1
    }
    mkdir "$work/mnt"
    hdiutil attach -nobrowse -readonly -noautoopen -mountpoint "$work/mnt" "$target" >/dev/null
    mounted=$work/mnt
    app=$mounted/Concord.app
    ;;
  *) app=$target ;;
esac
[ -d "$app/Contents/MacOS" ] || {
  echo "error: no app bundle at $app" >&2
  exit 1
}
macos=$app/Contents/MacOS

# Private HOME (and CoreFoundation's idea of it, which Qt and the keychain APIs use) and TMPDIR.
mkdir -p "$work/home" "$work/tmp" "$work/server-data"
export HOME=$work/home CFFIXED_USER_HOME=$work/home TMPDIR=$work/tmp QT_QPA_PLATFORM=offscreen
unset CONCORD_DATA_DIR CONCORD_CONFIG_DIR CONCORD_RUNTIME_DIR CONCORD_HOST CONCORD_PORT
echo "Concord smoke of $target (budgets: self-test ${selftest_budget} s, version ${version_budget} s)"

# --- steps -----------------------------------------------------------------------------------
step_volume() {
  local link
  link=$(readlink "$mounted/Applications" 2>/dev/null || true)
  if [ "$link" != /Applications ]; then
    detail="the volume has no Applications symlink (found '$link')"
    return 1
  fi
  detail="Concord.app and Applications -> /Applications"
}

step_signature() {
  local info
  if ! codesign --verify --deep --strict "$app" >"$work/codesign.txt" 2>&1; then
    detail="codesign --verify failed: $(cat "$work/codesign.txt")"
    return 1
  fi
  info=$(codesign --display --verbose=2 "$app" 2>&1 | grep -E '^(Signature|Authority|TeamIdentifier)=' |
    head -n 2 | tr '\n' ' ')
  detail="valid: ${info:-signed}"
  if [ "$expect_notarized" = 1 ]; then
    if ! spctl --assess --type execute --verbose=2 "$app" >"$work/spctl.txt" 2>&1; then
      detail="Gatekeeper rejects the app: $(cat "$work/spctl.txt")"
      return 1
    fi
    if [ -n "$mounted" ] && ! xcrun stapler validate "$target" >"$work/stapler.txt" 2>&1; then
      detail="the disk image has no valid notarization ticket: $(cat "$work/stapler.txt")"
      return 1
    fi
    detail="$detail; Gatekeeper accepts it (notarized)"
  fi
}

step_bundle() {
  local id main
  id=$(plist_get CFBundleIdentifier) || id=""
  main=$(plist_get CFBundleExecutable) || main=""
  if [ "$id" != "$APP_ID" ]; then
    detail="CFBundleIdentifier is '$id', expected $APP_ID"
    return 1
  fi
  if [ "$main" != concord ] || [ ! -x "$macos/concord" ] || [ ! -x "$macos/concord-server" ]; then
    detail="expected Contents/MacOS/concord (the CFBundleExecutable, found '$main') and concord-server"
    return 1
  fi
  # A background-only app has no Dock icon or menu bar, and its windows cannot come to the front.
  if [ "$(plist_get LSBackgroundOnly 2>/dev/null || true)" = true ]; then
    detail="Info.plist says LSBackgroundOnly: the app would have no Dock icon or menu bar"
    return 1
  fi
  detail="$id, Contents/MacOS/{concord,concord-server}, a foreground app"
}

step_arch() {
  local exe archs
  for exe in concord concord-server; do
    archs=$(lipo -archs "$macos/$exe" 2>&1) || archs="?"
    case " $archs " in
      *" $expect_arch "*) ;;
      *)
        detail="$exe is built for '$archs', expected $expect_arch"
        return 1
        ;;
    esac
  done
  detail="$archs"
}

server_version=""
app_version=""

step_server_version() {
  run_timed "$work/server-version.txt" "$macos/concord-server" --version
  local line
  line=$(head -n 1 "$work/server-version.txt")
  if [ "$rc" -ne 0 ]; then
    detail="exit code $rc: $(cat "$work/server-version.txt")"
    return 1
  fi
  case $line in
    "concord-server "*) server_version=${line#concord-server } ;;
    *)
      detail="unexpected output: '$line'"
      return 1
      ;;
  esac
  detail="$line (${took} s)"
}

step_app_version() {
  run_timed "$work/app-version.txt" "$macos/concord" --version
  local line
  line=$(head -n 1 "$work/app-version.txt")
  if [ "$rc" -ne 0 ]; then
    detail="exit code $rc: $(cat "$work/app-version.txt")"
    return 1
  fi
  case $line in
    "concord "*) app_version=${line#concord } ;;
    *)
      detail="unexpected output: '$line'"
      return 1
      ;;
  esac
  detail="$line (${took} s)"
}

step_self_test() {
  local report=$work/self-test-report.txt identity id version
  run_timed "$work/self-test.txt" "$macos/concord" --self-test --report "$report"
  if [ ! -f "$report" ]; then
    detail="exit code $rc and no report: $(cat "$work/self-test.txt")"
    return 1
  fi
  cat "$report"
  if [ "$rc" -ne 0 ]; then
    detail="exit code $rc: $(grep -F '[FAIL]' "$report" | tr '\n' ' ')"
    return 1
  fi
  if ! grep -qx 'all checks passed' "$report"; then
    detail="the report does not say 'all checks passed'"
    return 1
  fi
  # "  [PASS] app identity: io.github.concordchat.Concord 0.1.0, icon 16-256 px"
  identity=$(sed -n 's/^ *\[PASS\] app identity: \([^ ]*\) \([^ ,]*\),.*$/\1 \2/p' "$report")
  id=${identity% *}
  version=${identity#* }
  if [ "$id" != "$APP_ID" ]; then
    detail="the report's app identity is '$identity', expected $APP_ID"
    return 1
  fi
  if [ -n "$app_version" ] && [ "$version" != "$app_version" ]; then
    detail="the report says version $version, --version said $app_version"
    return 1
  fi
  detail="all checks passed (${took} s)"
}

step_versions() {
  if [ -z "$server_version" ] || [ -z "$app_version" ]; then
    detail="a version is unknown (see above)"
    return 1
  fi
  if [ "$server_version" != "$app_version" ]; then
    detail="concord-server $server_version but concord $app_version"
    return 1
  fi
  if [ -n "$expect_version" ] && [ "$app_version" != "$expect_version" ]; then
    detail="version $app_version, expected $expect_version"
    return 1
  fi
  detail="both $app_version"
}

free_port() {
  perl -MIO::Socket::INET -e \
    'my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0) or die "$!\n"; print $s->sockport, "\n"'
}

step_server() {
  local port url t0 ready code i rc=0 body
  port=$(free_port)
  url=http://127.0.0.1:$port/api/v1/health
  t0=$(now)
  "$macos/concord-server" serve --host 127.0.0.1 --port "$port" --data-dir "$work/server-data" \
    --log-level warning >"$work/server.log" 2>&1 </dev/null &
  server_pid=$!
  code=""
  while over "$server_timeout" "$(elapsed "$t0" "$(now)")"; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" || rc=$?
      server_pid=""
      detail="the server exited (code $rc): $(cat "$work/server.log")"
      return 1
    fi
    code=$(curl -sS -m 2 -o "$work/health.json" -w '%{http_code}' "$url" 2>/dev/null || true)
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  ready=$(elapsed "$t0" "$(now)")
  if [ "$code" != 200 ]; then
    detail="no 200 from $url within ${server_timeout} s (last: '$code'): $(cat "$work/server.log")"
    return 1
  fi
  body=$(cat "$work/health.json")
  if [ -n "$server_version" ] && ! grep -Eq "\"version\" *: *\"$server_version\"" "$work/health.json"; then
    detail="the health answer does not name version $server_version: $body"
    return 1
  fi
  if [ ! -f "$work/server-data/concord.db" ]; then
    detail="the server did not create its database in --data-dir"
    return 1
  fi
  kill -TERM "$server_pid"
  for i in $(seq 150); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    detail="the server did not stop within 15 s of SIGTERM"
    return 1
  fi
  wait "$server_pid" || rc=$?
  server_pid=""
  if [ "$rc" -ne 0 ]; then
    detail="the server exited with code $rc on SIGTERM (expected a clean 0): $(cat "$work/server.log")"
    return 1
  fi
  if curl -sS -m 1 -o /dev/null "$url" 2>/dev/null; then
    detail="port $port still answers after the server stopped"
    return 1
  fi
  detail="200 after ${ready} s on port $port ($body); SIGTERM -> exit 0 after $i polls"
}

# within_budget BUDGET CMD...: one warm-up run, then $budget_runs timed runs that must all exit 0;
# the median must be within BUDGET seconds.
within_budget() {
  local budget=$1 i times="" median
  shift
  run_timed "$work/budget.txt" "$@"
  for i in $(seq "$budget_runs"); do
    run_timed "$work/budget.txt" "$@"
    if [ "$rc" -ne 0 ]; then
      detail="run $i exited with code $rc: $(tail -n 5 "$work/budget.txt")"
      return 1
    fi
    times="$times $took"
  done
  # shellcheck disable=SC2086 # one time per word
  median=$(printf '%s\n' $times | sort -n | sed -n "$(((budget_runs + 1) / 2))p")
  detail="median ${median} s of $budget_runs warm runs, budget ${budget} s (runs:$times s)"
  if over "$median" "$budget"; then
    detail="over budget: $detail"
    return 1
  fi
}
step_budget_server_version() { within_budget "$version_budget" "$macos/concord-server" --version; }
step_budget_app_version() { within_budget "$version_budget" "$macos/concord" --version; }
step_budget_self_test() { within_budget "$selftest_budget" "$macos/concord" --self-test; }

if [ -n "$mounted" ]; then run_step "disk image volume" step_volume; fi
run_step "code signature" step_signature
run_step "bundle identity" step_bundle
if [ -n "$expect_arch" ]; then run_step "architecture" step_arch; fi
run_step "concord-server --version" step_server_version
run_step "concord --version" step_app_version
run_step "concord --self-test" step_self_test
run_step "versions agree" step_versions
run_step "server health and SIGTERM" step_server
run_step "budget concord-server --version" step_budget_server_version
run_step "budget concord --version" step_budget_app_version
run_step "budget concord --self-test" step_budget_self_test

echo
printf '%-5s %8s  %s\n' RESULT SECONDS STEP
while IFS="$(printf '\t')" read -r status took name _; do
  printf '%-5s %8s  %s\n' "$status" "$took" "$name"
done <"$results"
if [ "$failures" -gt 0 ]; then
  echo "Concord smoke FAILED: $failures step(s) failed ($target)" >&2
  exit 1
fi
echo "Concord smoke passed ($target)"
