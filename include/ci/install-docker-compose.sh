#!/usr/bin/env bash
# Installs the Docker Compose v2 CLI plugin (`docker compose`) on Debian bookworm, whose own
# `docker-compose` package is the old Python v1. Debian trixie's `docker-compose` package is Compose
# 2.x built statically (it depends on nothing but libc6 >= 2.34, which bookworm has), so its .deb is
# installed as is: the version is whatever trixie's Packages index names today, never hard-coded,
# and the download is checked against that index's SHA256. The plugin lands in
# /usr/libexec/docker/cli-plugins/docker-compose.
#
#   bash include/ci/install-docker-compose.sh      (root; quiet and a no-op when `docker compose` works)
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), COMPOSE_SUITE (default trixie).
set -euo pipefail

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${COMPOSE_SUITE:-trixie}
PACKAGE=docker-compose

die() { printf 'install-docker-compose: error: %s\n' "$*" >&2; exit 1; }

if docker compose version >/dev/null 2>&1; then
  exit 0
fi

[ "$(id -u)" = 0 ] || die "\`docker compose\` is missing and installing it needs root: run this script as root"
for tool in curl xz awk sha256sum dpkg; do
  command -v "$tool" >/dev/null || die "\`$tool\` is missing (apt-get install curl xz-utils gawk coreutils dpkg)"
done

arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

index_url="$MIRROR/dists/$SUITE/main/binary-$arch/Packages.xz"
curl -fsSL --retry 3 -o "$work/Packages.xz" "$index_url" || die "cannot download $index_url"
xz -dc "$work/Packages.xz" > "$work/Packages" || die "$index_url is not a valid xz file"

# The package's stanza (paragraphs are separated by blank lines); the highest version if several.
read -r version filename sha256 < <(
  awk -v pkg="$PACKAGE" '
    BEGIN { RS = ""; FS = "\n" }
    {
      name = version = file = sum = ""
      for (i = 1; i <= NF; i++) {
        split($i, kv, ": ")
        if (kv[1] == "Package") name = kv[2]
        else if (kv[1] == "Version") version = kv[2]
        else if (kv[1] == "Filename") file = kv[2]
        else if (kv[1] == "SHA256") sum = kv[2]
      }
      if (name == pkg) print version, file, sum
    }' "$work/Packages" | sort -V | tail -n 1
) || true
[ -n "${filename:-}" ] && [ -n "${sha256:-}" ] \
  || die "no $PACKAGE stanza with Filename and SHA256 in $index_url"
dpkg --compare-versions "$version" ge 2 \
  || die "$PACKAGE in $SUITE is version $version, the Python Compose v1: it has no \`docker compose\` plugin"

deb_url="$MIRROR/$filename"
deb="$work/${filename##*/}"
curl -fsSL --retry 3 -o "$deb" "$deb_url" || die "cannot download $deb_url"
actual=$(sha256sum "$deb" | cut -d' ' -f1)
[ "$actual" = "$sha256" ] \
  || die "SHA256 mismatch for $deb_url: got $actual, $index_url says $sha256"

dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || {
  cat "$work/dpkg.log" >&2
  die "dpkg -i $PACKAGE $version failed (see above)"
}
docker compose version >/dev/null 2>&1 \
  || die "installed $PACKAGE $version, but \`docker compose version\` still fails (is the docker CLI installed?)"
