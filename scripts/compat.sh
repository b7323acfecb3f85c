#!/usr/bin/env bash
# Compatibility stage of the test command (scripts/test.sh compat): makes the support claims of
# README.md "Requirements" true on this machine.
#
#  - controller: the oldest and the newest supported ansible-core, each in its own virtualenv
#    (.build/compat/ansible-core-<version>, ansible-core only: no psutil, no bundle), with a
#    Python picked per version from the interpreters present (pyenv's, then PATH);
#  - targets: the modules run with the oldest and the newest supported target Python (pyenv's
#    interpreters, without psutil);
#  - ansible-test sanity compile and import tests with the oldest target Python.
#
# tests/compat/test_compat.py does the checks; this script finds the interpreters, builds the
# virtualenvs (once; reused while the pin is unchanged) and says clearly what it had to skip.
# Environment: COMPAT_SKIP_SANITY=1 leaves the ansible-test part out.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  # shellcheck disable=SC1091
  . scripts/env.sh
fi

# What README.md claims. Controller Pythons: ansible-core 2.16 runs on 3.10-3.12, 2.21 on 3.12+.
CORE_OLDEST=2.16
CORE_OLDEST_PYTHONS=(3.10 3.11 3.12)
CORE_NEWEST=2.21
CORE_NEWEST_PYTHONS=(3.14 3.13 3.12)
TARGET_OLDEST=3.9
TARGET_NEWEST_PYTHONS=(3.13)

pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
skipped=()

# find_python 3.10 3.11 ... -> path of the first interpreter present, or nothing
find_python() {
  local version candidate
  for version in "$@"; do
    for candidate in "$pyenv_root"/versions/"$version".*/bin/python"$version"; do
      if [ -x "$candidate" ] && "$candidate" -c 'import sys' 2>/dev/null; then
        echo "$candidate"
        return 0
      fi
    done
    for candidate in /usr/bin/python"$version" /usr/local/bin/python"$version"; do
      if [ -x "$candidate" ]; then
        echo "$candidate"
        return 0
      fi
    done
  done
  return 0
}

# controller_venv CORE PYTHON -> bin directory of a virtualenv with ansible-core CORE.*
controller_venv() {
  local core=$1 python=$2 venv="$top/.build/compat/ansible-core-$1"
  local want
  want="ansible-core==$core.* $("$python" --version 2>&1)"
  if [ ! -x "$venv/bin/ansible-playbook" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ]; then
    echo "compat: creating $venv ($want)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "ansible-core==$core.*" >&2
    echo "$want" >"$venv/.stamp"
  fi
  echo "$venv/bin"
}

controllers=()
for spec in "$CORE_OLDEST:${CORE_OLDEST_PYTHONS[*]}" "$CORE_NEWEST:${CORE_NEWEST_PYTHONS[*]}"; do
  core=${spec%%:*}
  read -r -a pythons <<<"${spec#*:}"
  python=$(find_python "${pythons[@]}")
  if [ -z "$python" ]; then
    skipped+=("controller ansible-core $core: no Python ${pythons[*]} on this machine")
    controllers+=("$core=")
    continue
  fi
  bindir=$(controller_venv "$core" "$python")
  version=$("$bindir/ansible" --version 2>/dev/null || true)
  echo "compat: controller ${version%%$'\n'*} on $("$bindir/python" --version)"
  controllers+=("$core=$bindir")
done

targets=()
python=$(find_python "$TARGET_OLDEST")
if [ -n "$python" ]; then targets+=("$TARGET_OLDEST=$python"); else
  skipped+=("target Python $TARGET_OLDEST: not on this machine"); targets+=("$TARGET_OLDEST=")
fi
python=$(find_python "${TARGET_NEWEST_PYTHONS[@]}")
newest=${TARGET_NEWEST_PYTHONS[0]}
if [ -n "$python" ]; then
  newest=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  targets+=("$newest=$python")
else
  skipped+=("target Python ${TARGET_NEWEST_PYTHONS[*]}: not on this machine"); targets+=("$newest=")
fi
for target in "${targets[@]}"; do echo "compat: target Python ${target%%=*}: ${target#*=}"; done

rc=0
COMPAT_CONTROLLERS=$(IFS=';'; echo "${controllers[*]}") \
COMPAT_TARGETS=$(IFS=';'; echo "${targets[*]}") \
  pytest -q -rs -p no:cacheprovider tests/compat || rc=1

if [ "${COMPAT_SKIP_SANITY:-0}" != 1 ]; then
  python=$(find_python "$TARGET_OLDEST")
  if [ -n "$python" ]; then
    # ansible-test looks for python<version> on PATH; pyenv's shims only answer for the active
    # version, so put a link to the real interpreter first on PATH.
    mkdir -p "$top/.build/compat/bin"
    ln -sfn "$python" "$top/.build/compat/bin/python$TARGET_OLDEST"
    echo "compat: ansible-test sanity compile and import with Python $TARGET_OLDEST"
    PATH="$top/.build/compat/bin:$PATH" bash scripts/sanity.sh --test compile --python "$TARGET_OLDEST" || rc=1
    PATH="$top/.build/compat/bin:$PATH" bash scripts/sanity.sh --test import --python "$TARGET_OLDEST" || rc=1
  else
    skipped+=("ansible-test sanity with Python $TARGET_OLDEST: not on this machine")
  fi
fi

if [ ${#skipped[@]} -gt 0 ]; then
  echo "compat: SKIPPED (interpreters missing on this machine):"
  printf 'compat:   %s\n' "${skipped[@]}"
fi
exit $rc
