#!/usr/bin/env bash
# Builds the Debian package from an already built tree: `cmake --install` into a staging root with
# the prefix /usr (config to /etc/smtp-gateway), the maintainer scripts of packaging/debian, and
# dpkg-deb. Why not dpkg-buildpackage: it rebuilds everything from a clean tree (tens of minutes here,
# and again in CI); the package is only a different layout of the same install, so it reuses the
# build. Why not CPack's DEB generator: the config must go to /etc while everything else goes under
# the prefix, which CPack only does with absolute install paths (they would also write to the real
# /etc on a plain `cmake --install`).
#   bash scripts/build-deb.sh [BUILD_DIR] [OUT_DIR]     -> OUT_DIR/smtp-gateway_VERSION_ARCH.deb
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$repo/build}" && pwd)"
out="${2:-$build/deb}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"

cmake --build "$build" --target smtp-gateway man >/dev/null
DESTDIR="$root" cmake --install "$build" --prefix /usr >/dev/null
mv "$root/usr/etc" "$root/etc"
strip --strip-debug "$root/usr/bin/smtp-gateway"   # the debug info stays in the build tree
find "$root" -type d -exec chmod 0755 {} +

version="$("$build/smtp-gateway" --version | awk '{print $2}')"
arch="$(dpkg --print-architecture)"
# Depends: the packages that hold the shared libraries the binary links.
deps="$(ldd "$build/smtp-gateway" | awk '/=> \// {print $3}' | while read -r lib; do
  dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')"

mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: smtp-gateway
Version: $version
Architecture: $arch
Maintainer: smtp-gateway authors <postmaster@localhost>
Section: mail
Priority: optional
Depends: ${deps:-libc6}, passwd
Installed-Size: $(du -sk "$root" | cut -f1)
Homepage: https://example.invalid/smtp-gateway
Description: proxying SMTP gateway in front of Postfix or Exim
 Every SMTP transaction passes through an ordered pipeline of plugins (SPF,
 DKIM verify and sign, rate limiting, greylisting, Lua policies) and is
 forwarded in-line to the upstream MTA. It keeps no queue: it never answers
 250 to a message unless the upstream answered 250 to it.
CONTROL
(cd "$root" && find etc -type f | sed 's|^|/|') > "$root/DEBIAN/conffiles"
install -m 0755 "$repo/packaging/debian/postinst" "$repo/packaging/debian/prerm" "$repo/packaging/debian/postrm" "$root/DEBIAN/"
deb="$out/smtp-gateway_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz -z1 --build "$root" "$deb" >/dev/null
echo "$deb"
