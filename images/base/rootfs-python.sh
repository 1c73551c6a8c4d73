#!/bin/sh
# Build a minimal Debian root file system with python3 and write it as a tar to $1.
# Used for the offline base image appcoup/base-python (`docker import`): no registry needed,
# only this machine's own Debian mirror, read from apt's sources at run time.
# Usage: rootfs-python.sh OUT.tar [SUITE]
set -eu
out=$1
suite=${2:-}
[ -n "$suite" ] || suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

# The first "deb" URI apt uses for the main archive (deb822 .sources or one-line sources.list).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk 'tolower($1)=="uris:" && $2 !~ /security/ {print $2; exit}' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1=="deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "rootfs-python: no Debian mirror found in apt's sources" >&2; exit 2; }

root=$(mktemp -d "${TMPDIR:-/tmp}/appcoup-rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
echo "rootfs-python: debootstrap $suite from $mirror (takes a few minutes)"
debootstrap --variant=minbase --include=python3 "$suite" "$root" "$mirror"

# Trim what a container never reads: apt's caches and lists, docs, man pages, locales, tests.
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
       "$root"/usr/share/locale/* "$root"/usr/share/i18n/* "$root"/usr/share/zoneinfo/* \
       "$root"/usr/lib/python3*/test "$root"/usr/lib/python3*/idlelib "$root"/usr/lib/python3*/lib2to3 \
       "$root"/usr/lib/python3*/tkinter "$root"/usr/lib/python3*/ensurepip "$root"/usr/lib/python3*/pydoc_data \
       "$root"/var/log/* "$root"/debootstrap "$root"/tmp/*
tar -C "$root" --numeric-owner -cf "$out" .
echo "rootfs-python: wrote $out ($(du -h "$out" | cut -f1))"
