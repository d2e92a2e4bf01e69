#!/usr/bin/env bash
# Build the macOS disk image from the (signed) app bundle:
#
#   packaging/macos/make_dmg.sh VERSION ARCH      # ARCH: arm64 or x86_64
#     dist/Concord.app -> dist/concord-VERSION-macos-ARCH.dmg
#
# The image (compressed, read-only UDZO) opens as a volume "Concord" holding Concord.app and a
# symlink to /Applications, so installing is a drag. The app's version and architecture must
# match the arguments: a mislabelled download fails here, not on a user's Mac.
# CONCORD_APP overrides the app's path.
set -euo pipefail

die() {
  if [ "${GITHUB_ACTIONS:-}" = true ]; then echo "::error title=macOS dmg::$*"; fi
  echo "error: $*" >&2
  exit 1
}

[ $# -eq 2 ] || die "usage: $0 VERSION ARCH (arm64 or x86_64)"
version=$1
arch=$2
case $arch in
  arm64 | x86_64) ;;
  *) die "ARCH must be arm64 or x86_64, not '$arch'" ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
app=${CONCORD_APP:-$root/dist/Concord.app}
out=$root/dist/concord-$version-macos-$arch.dmg

[ -d "$app/Contents/MacOS" ] || die "no app bundle at $app (build it: pyinstaller packaging/concord.spec)"
plist=$app/Contents/Info.plist
bundle_version=$(/usr/libexec/PlistBuddy -c 'Print :CFBundleShortVersionString' "$plist")
[ "$bundle_version" = "$version" ] || die "$app is version $bundle_version, not $version"
main=$(/usr/libexec/PlistBuddy -c 'Print :CFBundleExecutable' "$plist")
archs=$(lipo -archs "$app/Contents/MacOS/$main")
case " $archs " in
  *" $arch "*) ;;
  *) die "$app/Contents/MacOS/$main is built for '$archs', not $arch" ;;
esac
codesign --verify --deep --strict "$app" || die "$app is not (validly) signed: run sign_and_notarize.sh app first"

staging=$(mktemp -d "${TMPDIR:-/tmp}/concord-dmg.XXXXXX")
trap 'rm -rf "$staging"' EXIT
chmod 755 "$staging" # becomes the volume's root directory
ditto "$app" "$staging/Concord.app" # keeps symlinks, permissions and signatures
ln -s /Applications "$staging/Applications"

mkdir -p "$(dirname "$out")"
rm -f "$out"
# hdiutil on GitHub's macOS runners sometimes fails with "Resource busy" (a scanner holding the
# new image): try again a few times before giving up.
attempt=1
until hdiutil create -volname Concord -srcfolder "$staging" -format UDZO -imagekey zlib-level=9 \
  -ov "$out"; do
  [ $attempt -lt 4 ] || die "hdiutil create failed $attempt times"
  echo "hdiutil create failed (attempt $attempt), trying again" >&2
  rm -f "$out"
  sleep $((attempt * 5))
  attempt=$((attempt + 1))
done
hdiutil verify "$out" >/dev/null || die "$out does not verify"
echo "built $out ($(du -h "$out" | cut -f1))"
