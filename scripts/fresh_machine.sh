#!/usr/bin/env bash
# The README's two commands on a bare Debian 12: bootstraps a minimal bookworm (debootstrap
# --variant=minbase) in build-fresh/root, clones this repository's committed HEAD into it, and runs
# inside it with chroot, as root:
#   bash scripts/test.sh
#   bash scripts/train.sh --epochs 1 --limit 4000
# Everything the chroot gets beyond minbase comes from scripts/setup.sh, run by those commands.
# Needs root (debootstrap, mount, chroot) and the network to reach the Debian mirror.
#
#   bash scripts/fresh_machine.sh
# Environment: MIRROR (default: the first Debian mirror for bookworm in this machine's apt sources).
# build-fresh/bookworm-minbase.tgz keeps minbase's packages, so that running the stage again in
# the same tree skips their download; the root file system is always made anew.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$repo/build-fresh
root=$work/root
debs=$work/bookworm-minbase.tgz

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh_machine: needs root (debootstrap, mount and chroot)" >&2
  exit 1
fi

# The mirror this machine's apt uses for bookworm: deb822 .sources files ("URIs:" before
# "Suites: bookworm ...") or one-line "deb URI bookworm main" entries.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/ {uri=$2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == "bookworm" && uri != "") {print uri; exit}}
         /^$/ {uri=""}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" && $0 !~ /\[/ && $3 == "bookworm" {print $2}' "$f"
  done
}
mirror=${MIRROR:-$(host_mirror | sed -n 1p)}
mirror=${mirror:-http://deb.debian.org/debian}

# Every mount under the root, deepest first.
mounts_under_root() { awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r; }
unmount_all() {
  local m
  for m in $(mounts_under_root); do umount -l "$m" || true; done
}
trap unmount_all EXIT

bash scripts/setup.sh debootstrap
mkdir -p "$work"
unmount_all
if [ -n "$(mounts_under_root)" ]; then
  echo "fresh_machine: something is still mounted under $root; not removing it" >&2
  exit 1
fi
rm -rf "$root"

start=$SECONDS
echo "fresh_machine: bootstrapping bookworm (minbase) from $mirror"
if [ ! -f "$debs" ]; then
  debootstrap --variant=minbase --make-tarball="$debs.part" bookworm "$work/tarball-tmp" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log"; exit 1; }
  mv "$debs.part" "$debs"
  rm -rf "$work/tarball-tmp"
fi
debootstrap --variant=minbase --unpack-tarball="$debs" bookworm "$root" "$mirror" >>"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log"; exit 1; }
echo "fresh_machine: bootstrap took $((SECONDS - start)) s"

cp /etc/resolv.conf "$root/etc/resolv.conf"
# What CI checks out: the committed HEAD of this repository.
git clone -q "$repo" "$root/root/tapegrad"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
# OpenMPI's shared-memory transport (the data-parallel tests) keeps its files in /dev/shm.
if mountpoint -q /dev/shm; then mount --bind /dev/shm "$root/dev/shm"; fi

in_chroot() {
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LC_ALL=C.UTF-8 ${OPENBLAS_CORETYPE:+OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE} \
    ${OPENBLAS_L2_SIZE:+OPENBLAS_L2_SIZE=$OPENBLAS_L2_SIZE} \
    /bin/bash -c "cd /root/tapegrad && $1"
}

start=$SECONDS
in_chroot "bash scripts/test.sh"
echo "fresh_machine: bash scripts/test.sh passed in $((SECONDS - start)) s"

start=$SECONDS
in_chroot "bash scripts/train.sh --epochs 1 --limit 4000 --out /root/out" 2>&1 | tee "$work/train.log"
grep -q '^test accuracy: ' "$work/train.log"
# Its output is a pipe, not a terminal: plain progress lines, no carriage returns.
if grep -q $'\r' "$work/train.log"; then
  echo "fresh_machine: the trainer wrote carriage returns into a log" >&2
  exit 1
fi
echo "fresh_machine: bash scripts/train.sh --epochs 1 --limit 4000 passed in $((SECONDS - start)) s"
