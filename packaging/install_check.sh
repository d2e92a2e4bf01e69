#!/usr/bin/env bash
# Install the built .deb with apt, smoke-test the installed copy from /usr/bin, purge it and check
# that nothing of it is left. Needs root (CI runs as root). Usage: packaging/install_check.sh [DEB]
set -euo pipefail
cd "$(dirname "$0")/.."
debs=(dist/concord_*_amd64.deb)
deb=${1:-${debs[-1]}}
export DEBIAN_FRONTEND=noninteractive
fail() { echo "FAIL install-check: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root to install $deb"
if dpkg -s concord >/dev/null 2>&1; then apt-get purge -y -qq concord >/dev/null; fi

t0=$(date +%s%N)
apt-get update -qq || true  # the Depends come from the mirror
apt-get install -y -qq "./$deb" >/dev/null || fail "apt-get install ./$deb"
echo "ok   apt-get install $deb ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
[ "$(dpkg-query -W -f='${Status}' concord)" = "install ok installed" ] || fail "not installed"
mapfile -t owned < <(dpkg -L concord)
for exe in /usr/bin/concord /usr/bin/concord-server; do [ -x "$exe" ] || fail "$exe missing"; done
app_id=io.github.concordchat.Concord
for f in "/usr/share/applications/$app_id.desktop" "/usr/share/metainfo/$app_id.metainfo.xml" \
         "/usr/share/icons/hicolor/256x256/apps/$app_id.png" /usr/share/doc/concord/copyright; do
  [ -f "$f" ] || fail "$f missing"
done
desktop-file-validate "/usr/share/applications/$app_id.desktop" || fail "desktop-file-validate"

packaging/smoke.sh /usr/bin || fail "smoke of the installed copy"

apt-get purge -y -qq concord >/dev/null || fail "apt-get purge concord"
dpkg -s concord >/dev/null 2>&1 && fail "concord still known to dpkg after purge"
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
echo "ok   purge: none of the ${#owned[@]} paths the package owned is left"
