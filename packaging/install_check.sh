#!/usr/bin/env bash
# Install the built .deb with apt (Depends and Recommends, as a user gets them), smoke-test the
# installed copy from /usr/bin, purge it with every package its install brought in, and check
# that nothing of it is left. Needs root (CI runs as root).
#
#   packaging/install_check.sh [--force] [DEB]   (default: the newest dist/concord_*_amd64.deb)
#
# An already installed concord is purged first only with --force or under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/concord-install-check.XXXXXX)
fail() {
  echo "FAIL install-check: $*" >&2
  echo "--- apt and dpkg output ($log) ---" >&2
  tail -n 40 "$log" >&2
  exit 1
}

force=0
if [ "${1:-}" = --force ]; then force=1; shift; fi
[ "${CI:-}" = true ] && force=1
if [ $# -gt 0 ]; then
  deb=$1
else
  deb=$(printf '%s\n' dist/concord_*_amd64.deb | sort -V | tail -n 1)
fi
[ -f "$deb" ] || fail "no package at $deb (build it: python3 packaging/dev.py package)"
case $deb in /*) ;; *) deb=./$deb ;; esac  # apt takes a file only as a path
[ "$(id -u)" = 0 ] || fail "needs root to install $deb"

if dpkg -s concord >/dev/null 2>&1; then
  [ "$force" = 1 ] || fail "concord is installed already: run with --force to purge it first"
  apt-get purge -y concord >>"$log" 2>&1 || fail "apt-get purge of the installed concord"
fi

installed_packages() { dpkg-query -W -f='${Package}\n' | sort; }
before=$(installed_packages)
purge_all() {  # concord and what its install pulled in (Depends, Recommends)
  local brought
  brought=$(comm -13 <(echo "$before") <(installed_packages) | grep -vx concord || :)
  # shellcheck disable=SC2086 # one word per package
  apt-get purge -y concord $brought >>"$log" 2>&1
}
on_exit() {  # a failed check leaves nothing installed either
  local status=$?
  if [ "$status" -ne 0 ] && dpkg -s concord >/dev/null 2>&1; then purge_all || :; fi
}
trap on_exit EXIT

t0=$(date +%s%N)
apt-get update >>"$log" 2>&1 || echo "warning: apt-get update failed; trying the lists at hand" >&2
apt-get install -y "$deb" >>"$log" 2>&1 || fail "apt-get install $deb"
echo "ok   apt-get install $deb ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
[ "$(dpkg-query -W -f='${Status}' concord)" = "install ok installed" ] || fail "not installed"
mapfile -t owned < <(dpkg -L concord)
[ "${#owned[@]}" -gt 100 ] || fail "dpkg -L concord lists only ${#owned[@]} paths"
for exe in /usr/bin/concord /usr/bin/concord-server; do [ -x "$exe" ] || fail "$exe missing"; done
app_id=io.github.concordchat.Concord
for f in "/usr/share/applications/$app_id.desktop" "/usr/share/metainfo/$app_id.metainfo.xml" \
         "/usr/share/icons/hicolor/256x256/apps/$app_id.png" /usr/share/doc/concord/copyright; do
  [ -f "$f" ] || fail "$f missing"
done
desktop-file-validate "/usr/share/applications/$app_id.desktop" || fail "desktop-file-validate"

packaging/smoke.sh /usr/bin || fail "smoke of the installed copy"

purge_all || fail "apt-get purge concord"
! dpkg -s concord >/dev/null 2>&1 || fail "concord still known to dpkg after purge"
left=()
for path in "${owned[@]}"; do
  [ "$path" = "/." ] && continue
  if [ -L "$path" ] || [ -f "$path" ]; then
    left+=("$path")
  elif [ -d "$path" ] && [ -z "$(dpkg -S "$path" 2>/dev/null)" ]; then
    left+=("$path/")  # a directory no other package owns must be gone
  fi
done
[ ${#left[@]} -eq 0 ] || fail "left after purge: ${left[*]}"
[ ! -e /usr/lib/concord ] || fail "/usr/lib/concord left after purge"
stray=$(comm -13 <(echo "$before") <(installed_packages) || :)
[ -z "$stray" ] || fail "packages the install brought in are still installed: $stray"
echo "ok   purge: none of the ${#owned[@]} paths the package owned is left, nor what it brought in"
rm -f "$log"
