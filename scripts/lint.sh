#!/usr/bin/env bash
# ansible-lint (production profile, settings in .ansible-lint) on the roles and playbooks.
# Runs offline; ANSIBLE_COLLECTIONS_PATH from scripts/env.sh makes daemonops.suite.* resolve to
# this checkout.
# Usage: scripts/lint.sh [paths...]      (default: roles/ playbooks/)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck disable=SC1091
. scripts/env.sh
command -v ansible-lint >/dev/null || { echo "lint.sh: ansible-lint not found; run scripts/bootstrap.sh" >&2; exit 2; }
if [ $# -gt 0 ]; then
  paths=("$@")
else
  paths=()
  for p in roles playbooks; do [ -d "$p" ] && paths+=("$p/"); done
fi
if [ ${#paths[@]} -eq 0 ]; then
  echo "lint.sh: nothing to lint (no roles/ or playbooks/)"
  exit 0
fi
t0=$SECONDS
rc=0
ansible-lint --offline --profile production --nocolor "${paths[@]}" || rc=$?
echo "lint.sh: finished in $((SECONDS - t0))s, exit $rc"
exit $rc
