#!/usr/bin/env bash
# Build a small busybox root filesystem tarball to import as an image: `scripts/mkimage.sh OUT.tar`.
#
# The binary is Debian's busybox-static (/bin/busybox), installed with apt-get when missing. The output is
# reproducible: names sorted, owners numeric, every mtime set to the busybox binary's, so the same busybox
# gives the same tarball (and the same image ID) on every run. OUT is replaced atomically.
set -euo pipefail

usage() { echo "usage: $0 OUT.tar" >&2; exit 2; }
[[ $# -eq 1 && -n $1 ]] || usage
out=$1
busybox=/bin/busybox

is_static() { ! ldd "$1" >/dev/null 2>&1; } # ldd fails on static binaries

if [[ ! -x $busybox ]] || ! is_static "$busybox"; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "$0: need a static $busybox: run as root, or apt-get install busybox-static" >&2
        exit 1
    fi
    echo "$0: installing busybox-static" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq busybox-static >/dev/null
    is_static "$busybox" || { echo "$0: $busybox is still not static" >&2; exit 1; }
fi

umask 022
mkdir -p "$(dirname "$out")"
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-mkimage.XXXXXX")
tmp=$out.tmp.$$ # next to OUT, so the final rename is atomic
trap 'rm -rf "$work" "$tmp"' EXIT
root=$work/rootfs

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home/app,var/www,proc,sys,dev}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

cp "$busybox" "$root/bin/busybox"
while read -r applet; do
    [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
done < <("$busybox" --list)

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
users:x:100:app
app:x:1000:
nogroup:x:65534:
EOF
echo berth >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf" # a mount point for the engine's own
echo "hello from berth" >"$root/var/www/index.html"

# Owners come from tar, not chown, so this works without root: everything is 0:0 except the home of app.
mtime=$(stat -c %Y "$busybox")
tarflags=(--numeric-owner --sort=name --mtime="@$mtime" --format=gnu -C "$root")
tar "${tarflags[@]}" --owner=0 --group=0 --exclude=./home/app -cf "$tmp" .
tar "${tarflags[@]}" --owner=1000 --group=1000 -rf "$tmp" ./home/app
mv -f "$tmp" "$out"
banner=$("$busybox" 2>&1 || true)
banner=${banner%%$'\n'*}
echo "$out: ${banner%% (*}, $(tar -tf "$out" | wc -l) entries" >&2
