#!/usr/bin/env bash
# Prepares ansible-test for machines that cannot reach ci-files.testing.ansible.com.
#
# `ansible-test sanity` bootstraps pip into each of its virtual environments with a script it
# downloads from ci-files.testing.ansible.com, unless a cached copy exists at
# ~/.ansible/test/cache/get_pip_<PIP VERSION with dots as underscores>.py.  ansible-core 2.19
# pins pip 24.2 (ansible_test/_internal/python_requirements.py, get_venv_packages()).
#
# ansible-test runs that script as
#   <venv python> quiet_pip.py --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel
# (quiet_pip.py runpy-runs the cached file as __main__, so sys.argv[1:] are those options) with
# PIP_CONFIG_FILE=/dev/null, so the machine's pip settings (CA bundle) do not reach it.  The
# replacement below bootstraps pip with `ensurepip` (offline) and then runs
# `pip install --cert <CA bundle> <its arguments minus --no-setuptools/--no-wheel>`.
#
# Usage: scripts/ansible-test-setup.sh        (idempotent; rewrites the file only when it changed)
# Environment: ANSIBLE_TEST_PIP_VERSION (default: read from the installed ansible-test),
#              ANSIBLE_TEST_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
py="$top/.venv/bin/python"
[ -x "$py" ] || py=python3

pip_version=${ANSIBLE_TEST_PIP_VERSION:-}
if [ -z "$pip_version" ]; then
  pip_version=$("$py" - <<'PY'
import pathlib, re
try:
    import ansible_test
except ImportError:
    print("24.2")
else:
    src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    m = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", src.read_text())
    print(m.group(1) if m else "24.2")
PY
)
fi
ca=${ANSIBLE_TEST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

cache_dir="$HOME/.ansible/test/cache"
target="$cache_dir/get_pip_${pip_version//./_}.py"
mkdir -p "$cache_dir"

tmp=$(mktemp "$cache_dir/.get_pip.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<PY
"""Offline stand-in for get-pip.py, written by daemonops.suite scripts/ansible-test-setup.sh.

Bootstraps pip with ensurepip, then installs the requested packages (e.g. pip==${pip_version})
trusting the machine's CA bundle, which ansible-test's filtered environment would otherwise hide.
"""

from __future__ import annotations

import os
import subprocess
import sys

CA_BUNDLE = "${ca}"
DROPPED = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    args = [arg for arg in sys.argv[1:] if arg not in DROPPED]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    command = [sys.executable, "-m", "pip", "install"]
    if os.path.isfile(CA_BUNDLE):
        command += ["--cert", CA_BUNDLE]
    command += args
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
PY

if [ -f "$target" ] && cmp -s "$tmp" "$target"; then
  echo "ansible-test-setup: $target is up to date"
else
  mv "$tmp" "$target"
  echo "ansible-test-setup: wrote $target"
fi
