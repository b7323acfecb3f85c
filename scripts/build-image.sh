#!/usr/bin/env bash
# Builds the local base image the molecule scenarios boot: Debian bookworm with systemd as
# PID 1 and everything the roles would otherwise fetch (python3, psutil, psycopg2, PostgreSQL,
# openssl ...). No container registry is needed: the root filesystem comes from debootstrap
# and a Debian mirror, and is imported with `podman import`.
#
#   bash scripts/build-image.sh            # build localhost/daemonops-base:<recipe hash>, tag :latest
#   DEBIAN_MIRROR=http://... bash scripts/build-image.sh
#   DAEMONOPS_MOLECULE_IMAGE=docker.io/... bash scripts/build-image.sh   # no-op: stock image used
#
# The tag is the sha256 of this file (the recipe): an unchanged recipe is never rebuilt.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
default_image=localhost/daemonops-base:latest
repo=localhost/daemonops-base
suite=${DEBIAN_SUITE:-bookworm}

if [ -n "${DAEMONOPS_MOLECULE_IMAGE:-}" ] && [ "$DAEMONOPS_MOLECULE_IMAGE" != "$default_image" ]; then
  echo "build-image: DAEMONOPS_MOLECULE_IMAGE=$DAEMONOPS_MOLECULE_IMAGE, nothing to build"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "build-image: debootstrap needs root; run as root (or with sudo)" >&2
  exit 1
fi
for tool in podman debootstrap tar sha256sum; do
  command -v "$tool" >/dev/null || {
    echo "build-image: '$tool' not found; run 'bash scripts/bootstrap.sh' first" >&2
    exit 1
  }
done

[ -f "$top/.build/containers.conf" ] || bash "$top/scripts/podman-setup.sh"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$top/.build/containers.conf}

recipe=$(sha256sum "$0" | cut -c1-16)
image=$repo:$recipe

if podman image exists "$image"; then
  podman tag "$image" "$default_image"
  echo "build-image: $image exists (recipe unchanged), tagged $default_image"
  exit 0
fi

# The Debian mirror this machine's apt already uses (the only one reachable here).
find_mirror() {
  local uri
  uri=$(sed -n 's/^[[:space:]]*URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -- '-security' | grep '/debian/*$' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\)[[:space:]].*/\2/p' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      grep -v -- '-security' | grep '/debian/*$' | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}
mirror=${DEBIAN_MIRROR:-$(find_mirror)}

packages=systemd,systemd-sysv,dbus,python3,python3-psutil,python3-psycopg2,postgresql,openssl,procps
packages=$packages,iproute2,iputils-ping,curl,ca-certificates,sudo

workdir=$(mktemp -d /var/tmp/daemonops-rootfs.XXXXXX)
rootfs=$workdir/rootfs
cleanup() {
  # debootstrap can leave /proc or /sys mounted inside the tree when it fails: unmount first,
  # and never remove anything but the mktemp directory made above.
  local m
  awk -v r="$rootfs" '$2 ~ "^"r {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  case $workdir in /var/tmp/daemonops-rootfs.*) rm -rf --one-file-system "$workdir" ;; esac
}
trap cleanup EXIT

echo "build-image: debootstrap $suite from $mirror"
start=$SECONDS
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" \
  > "$workdir/debootstrap.log" 2>&1 || {
  tail -n 30 "$workdir/debootstrap.log" >&2
  echo "build-image: debootstrap failed (log above)" >&2
  exit 1
}
echo "build-image: debootstrap took $((SECONDS - start)) s"

# --- tweaks for systemd in a container -----------------------------------------------------
# Units that wait for a console or for hardware and hang or fail in a container.
for unit in getty.target console-getty.service getty@tty1.service serial-getty@.service \
  systemd-udevd.service systemd-udev-trigger.service systemd-udevd-control.socket \
  systemd-udevd-kernel.socket systemd-modules-load.service systemd-remount-fs.service \
  systemd-firstboot.service sys-kernel-config.mount sys-kernel-debug.mount \
  sys-kernel-tracing.mount dev-hugepages.mount apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer fstrim.timer; do
  ln -sfn /dev/null "$rootfs/etc/systemd/system/$unit"
done
# An empty machine-id: systemd generates a fresh one per container at boot.
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
# PostgreSQL is installed (the Seon/OS4X PID table case) but started only by the scenarios
# that need it.
chroot "$rootfs" systemctl disable postgresql.service >/dev/null 2>&1 || true
# Keep the journal in memory-backed /run; it is what the fault scenario reads.
mkdir -p "$rootfs/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' \
  > "$rootfs/etc/systemd/journald.conf.d/90-container.conf"
# Shrink: package caches and lists are not needed at run time.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
echo "daemonops-base recipe $recipe ($suite, $(date -u +%Y-%m-%dT%H:%M:%SZ))" \
  > "$rootfs/etc/daemonops-image"

echo "build-image: importing $image"
tar --numeric-owner -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  - "$image" >/dev/null
podman tag "$image" "$default_image"
echo "build-image: built $image and tagged $default_image in $((SECONDS - start)) s"
