#!/usr/bin/env bash
# Code-sign Concord.app, and sign, notarize and staple its disk image, from the release workflow's
# secrets. Two steps, because the dmg is made (make_dmg.sh) from the signed app:
#
#   packaging/macos/sign_and_notarize.sh app dist/Concord.app
#   packaging/macos/make_dmg.sh VERSION ARCH
#   packaging/macos/sign_and_notarize.sh dmg dist/concord-VERSION-macos-ARCH.dmg
#
# Secrets (environment):
#   MACOS_CERT_P12_BASE64  the "Developer ID Application" certificate and key (.p12), base64
#   MACOS_CERT_PASSWORD    its password
#   MACOS_SIGN_IDENTITY    the identity to sign with ("Developer ID Application: Name (TEAMID)",
#                          or its SHA-1 hash)
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD
#                          the Apple account, team and app-specific password for notarytool
#
# With a certificate: every Mach-O in the bundle is signed inside-out (deepest first: Python, the
# extension modules, Qt's plugins and libraries, each .framework, then the executables in
# Contents/MacOS, then the app) with the hardened runtime (--options runtime), a secure timestamp
# and, for the executables, entitlements.plist, from a temporary keychain deleted at exit. No
# --deep: Apple advises against it for signing, and it would not give the executables their
# entitlements. The dmg is then signed, notarized (notarytool submit --wait) and stapled.
#
# Without one (MACOS_CERT_P12_BASE64 empty: a fork, or no Apple Developer account yet): the app
# gets an ad-hoc signature (codesign -s -), which Apple silicon requires of all code (an unsigned
# arm64 binary is killed at launch); PyInstaller already signs ad hoc, this re-seals the bundle
# after any change. The build is then UNSIGNED for Gatekeeper (users must right-click > Open),
# and it says so.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
entitlements="$here/entitlements.plist"

annotate() { # level message: a GitHub Actions annotation when running there
  if [ "${GITHUB_ACTIONS:-}" = true ]; then echo "::$1 title=macOS signing::$2"; fi
}
die() {
  annotate error "$*"
  echo "error: $*" >&2
  exit 1
}
warn() {
  annotate warning "$*"
  echo "warning: $*" >&2
}

[ $# -eq 2 ] || die "usage: $0 app PATH.app | dmg PATH.dmg"
mode=$1
target=${2%/}

signing=false
if [ -n "${MACOS_CERT_P12_BASE64:-}" ]; then
  signing=true
  [ -n "${MACOS_CERT_PASSWORD:-}" ] || die "MACOS_CERT_P12_BASE64 is set but MACOS_CERT_PASSWORD is empty"
  [ -n "${MACOS_SIGN_IDENTITY:-}" ] || die "MACOS_CERT_P12_BASE64 is set but MACOS_SIGN_IDENTITY is empty"
fi

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/concord-sign.XXXXXX")
keychain=""
old_keychains=()
cleanup() {
  if [ -n "$keychain" ]; then
    security list-keychains -d user -s ${old_keychains[@]+"${old_keychains[@]}"} >/dev/null 2>&1 || true
    security delete-keychain "$keychain" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A throw-away keychain holding only the signing certificate, first in the search list.
setup_keychain() {
  local password line
  keychain="$work/concord-signing.keychain-db"
  password=$(uuidgen)
  security create-keychain -p "$password" "$keychain"
  security set-keychain-settings -lut 21600 "$keychain" # stays unlocked for the job's 6 hours
  security unlock-keychain -p "$password" "$keychain"
  printf '%s' "$MACOS_CERT_P12_BASE64" | base64 --decode >"$work/cert.p12" ||
    die "MACOS_CERT_P12_BASE64 is not valid base64"
  security import "$work/cert.p12" -k "$keychain" -f pkcs12 -P "$MACOS_CERT_PASSWORD" \
    -T /usr/bin/codesign -T /usr/bin/security >/dev/null ||
    die "could not import the certificate (wrong MACOS_CERT_PASSWORD?)"
  rm -f "$work/cert.p12"
  # Lets codesign use the key without a UI prompt.
  security set-key-partition-list -S apple-tool:,apple:,codesign: -s -k "$password" "$keychain" >/dev/null
  while IFS= read -r line; do
    line=${line#"${line%%[![:space:]]*}"} # trim, then unquote
    line=${line#\"}
    old_keychains+=("${line%\"}")
  done < <(security list-keychains -d user)
  security list-keychains -d user -s "$keychain" ${old_keychains[@]+"${old_keychains[@]}"}
  security find-identity -v -p codesigning "$keychain" | grep -F -- "$MACOS_SIGN_IDENTITY" >/dev/null ||
    die "the certificate has no valid code-signing identity matching MACOS_SIGN_IDENTITY"
}

# sign PATH [ENTITLEMENTS]
sign() {
  local args=(--force)
  if $signing; then
    args+=(--sign "$MACOS_SIGN_IDENTITY" --keychain "$keychain" --options runtime --timestamp)
  else
    args+=(--sign - --timestamp=none)
  fi
  if [ $# -gt 1 ]; then args+=(--entitlements "$2"); fi
  codesign "${args[@]}" "$1" || die "codesign failed on $1"
}

is_macho() {
  case "$(file -b "$1")" in
    Mach-O*) return 0 ;;
    *) return 1 ;;
  esac
}

# Every nested code item (Mach-O files outside Contents/MacOS, and .framework bundles), deepest
# first, so that each container is signed after what it contains.
nested_code() {
  local app=$1 path
  {
    find "$app/Contents" -type d -name '*.framework' -print
    find "$app/Contents" -type f ! -path "$app/Contents/MacOS/*" -print | while IFS= read -r path; do
      if is_macho "$path"; then printf '%s\n' "$path"; fi
    done
  } | awk -F/ '{ printf "%d\t%s\n", NF, $0 }' | sort -t "$(printf '\t')" -k1,1nr -k2 | cut -f2-
}

sign_app() {
  local app=$1 path count=0 main how
  [ -d "$app/Contents/MacOS" ] || die "$app is not an app bundle"
  [ -f "$entitlements" ] || die "missing $entitlements"
  if $signing; then
    setup_keychain
  else
    warn "MACOS_CERT_P12_BASE64 is not set: ad-hoc signature only; $(basename "$app") is UNSIGNED and will not be notarized"
  fi
  # Finder info and resource forks ("detritus") make codesign refuse a file.
  xattr -cr "$app"
  while IFS= read -r path; do
    sign "$path"
    count=$((count + 1))
  done < <(nested_code "$app")
  main=$(/usr/libexec/PlistBuddy -c 'Print :CFBundleExecutable' "$app/Contents/Info.plist")
  for path in "$app"/Contents/MacOS/*; do
    # The helper executables (concord-server); the main one is signed with the bundle below.
    if [ -f "$path" ] && [ ! -L "$path" ] && [ "$(basename "$path")" != "$main" ] && is_macho "$path"; then
      sign "$path" "$entitlements"
      count=$((count + 1))
    fi
  done
  sign "$app" "$entitlements"
  how=ad-hoc
  if $signing; then how="identity $MACOS_SIGN_IDENTITY, hardened runtime"; fi
  echo "signed $count nested items, then $app ($how)"
  codesign --verify --deep --strict --verbose=2 "$app" || die "the signature of $app does not verify"
  codesign --display --verbose=2 "$app" 2>&1 | grep -E '^(Identifier|Format|CodeDirectory|Signature|Authority|TeamIdentifier|Runtime)' || true
}

notarize_dmg() {
  local dmg=$1 status id
  [ -f "$dmg" ] || die "no such disk image: $dmg"
  if ! $signing; then
    warn "MACOS_CERT_P12_BASE64 is not set: $(basename "$dmg") is UNSIGNED and not notarized"
    return 0
  fi
  setup_keychain
  sign "$dmg"
  codesign --verify --verbose=2 "$dmg" || die "the signature of $dmg does not verify"
  if [ -z "${APPLE_ID:-}" ] || [ -z "${APPLE_TEAM_ID:-}" ] || [ -z "${APPLE_APP_PASSWORD:-}" ]; then
    warn "APPLE_ID, APPLE_TEAM_ID or APPLE_APP_PASSWORD is not set: $(basename "$dmg") is signed but NOT notarized (Gatekeeper will refuse it)"
    return 0
  fi
  echo "notarizing $dmg (this waits for Apple, usually a few minutes)"
  xcrun notarytool submit "$dmg" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
    --password "$APPLE_APP_PASSWORD" --wait --timeout 45m --output-format json >"$work/notary.json" ||
    true # the status below tells
  cat "$work/notary.json"
  echo
  status=$(plutil -extract status raw -o - "$work/notary.json" 2>/dev/null || echo unknown)
  id=$(plutil -extract id raw -o - "$work/notary.json" 2>/dev/null || echo "")
  if [ "$status" != Accepted ]; then
    if [ -n "$id" ]; then
      xcrun notarytool log "$id" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
        --password "$APPLE_APP_PASSWORD" || true
    fi
    die "notarization of $dmg ended with status '$status' (the log above says why)"
  fi
  xcrun stapler staple "$dmg" || die "stapling the ticket to $dmg failed"
  xcrun stapler validate "$dmg" || die "the stapled ticket of $dmg does not validate"
  spctl --assess --type open --context context:primary-signature --verbose=2 "$dmg" ||
    die "Gatekeeper rejects $dmg"
  echo "notarized and stapled: $dmg"
}

case $mode in
  app) sign_app "$target" ;;
  dmg) notarize_dmg "$target" ;;
  *) die "usage: $0 app PATH.app | dmg PATH.dmg" ;;
esac
