#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian/Ubuntu machine:
# Debian packages, the virtualenv with the pinned toolchain, podman settings.
# Safe to run again: each step is skipped when its result is already there.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

APT_PACKAGES=(podman runc debootstrap uidmap slirp4netns fuse-overlayfs
  postgresql postgresql-client chromium lsof net-tools iproute2 procps
  python3-venv git make shellcheck openssl)

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-target.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating .venv with $($PY --version)"
  rm -rf .venv
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip wheel
  .venv/bin/pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi

bash scripts/podman-setup.sh
echo "bootstrap: done"
