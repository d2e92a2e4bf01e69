#!/bin/sh
# Concord's portable archive: add it to your app menu (for you only, under ~/.local), or take it
# out again. Nothing is copied but the menu entry and icons; the app stays in this folder.
#   ./install.sh            menu entry, icons, and ~/.local/bin/concord{,-server}
#   ./install.sh --remove   undo that (your messages and settings are kept)
set -eu
here=$(cd "$(dirname "$0")" && pwd -P)
id=io.github.concordchat.Concord
data=${XDG_DATA_HOME:-$HOME/.local/share}
bin=$HOME/.local/bin

refresh() {  # the caches desktops read, where their tools exist (a failure here is harmless)
  if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$data/applications" 2>/dev/null || :
  fi
  if command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t "$data/icons/hicolor" 2>/dev/null || :
  fi
}

if [ "${1:-}" = --remove ]; then
  rm -f "$bin/concord" "$bin/concord-server" "$data/applications/$id.desktop" \
    "$data/metainfo/$id.metainfo.xml" "$data"/icons/hicolor/*/apps/"$id".png \
    "$data/icons/hicolor/scalable/apps/$id.svg"
  refresh
  echo "Concord is out of your app menu. This folder ($here) can be deleted."
  exit 0
fi

case $here in *[\"\`\$\\]*) echo "error: move this folder to a path without \" \` \$ or \\" >&2; exit 1 ;; esac
mkdir -p "$bin" "$data/applications" "$data/metainfo"
ln -sf "$here/concord" "$bin/concord"
ln -sf "$here/concord-server" "$bin/concord-server"
# The menu entry runs this folder's concord, quoted as the desktop-entry spec asks.
sed "s|^Exec=concord|Exec=\"$here/concord\"|" "$here/share/applications/$id.desktop" \
  >"$data/applications/$id.desktop"
cp "$here/share/metainfo/$id.metainfo.xml" "$data/metainfo/"
cp -R "$here/share/icons" "$data/"
refresh
echo "Concord is in your app menu, and 'concord' in $bin."
