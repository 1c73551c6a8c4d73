#!/bin/sh
# Build the smallest root file system that runs a POSIX shell: Debian's static busybox and
# one link per applet. Written as a tar to $1 for the offline base image appcoup/base-busybox.
# Usage: rootfs-busybox.sh OUT.tar [BUSYBOX]
set -eu
out=$1
bb=${2:-/bin/busybox}
"$bb" --list | grep -qx sh || { echo "rootfs-busybox: $bb is not a busybox with sh (apt-get install busybox-static)" >&2; exit 2; }
file -L "$bb" 2>/dev/null | grep -q 'dynamically linked' && { echo "rootfs-busybox: $bb is not static" >&2; exit 2; }
root=$(mktemp -d "${TMPDIR:-/tmp}/appcoup-rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
tar -C "$root" --numeric-owner -cf "$out" .
echo "rootfs-busybox: wrote $out"
