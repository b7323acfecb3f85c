#!/usr/bin/env bash
# Runs `ansible-test sanity` on a real copy of the collection.
#
# ansible-test needs the collection at a path ending in ansible_collections/<namespace>/<name>
# and does not follow symlinks out of that tree, so the files git knows about (tracked, plus
# untracked files that .gitignore does not exclude) are copied to
#   .build/ansible_collections/daemonops/suite
# and ansible-test runs there.  The copy is made afresh on every run, so deleted files vanish.
#
# Usage: scripts/sanity.sh [ansible-test sanity options...]
#   e.g. scripts/sanity.sh --test validate-modules     or   scripts/sanity.sh plugins/modules/x.py
# Environment: SANITY_PYTHON (default 3.11).
# The sanity virtual environments live in ~/.ansible/test/venv; the first run creates them from
# PyPI (about a minute), later runs reuse them.  Results: .build/ansible_collections/daemonops/
# suite/tests/output/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f scripts/env.sh ]; then
  # shellcheck disable=SC1091
  . scripts/env.sh
fi
command -v ansible-test >/dev/null || { echo "sanity.sh: ansible-test not found; run scripts/bootstrap.sh" >&2; exit 2; }

# the cached pip bootstrap (no access to ci-files.testing.ansible.com)
bash scripts/ansible-test-setup.sh >/dev/null

dest="$top/.build/ansible_collections/daemonops/suite"
# one run at a time: a second run would wipe the copy under the first (and ansible-test's
# virtual environments in ~/.ansible/test/venv are not safe to create concurrently either)
mkdir -p "$top/.build"
exec 9>"$top/.build/sanity.lock"
if ! flock -n 9; then
  echo "sanity.sh: another sanity run is in progress; waiting for it"
  flock 9
fi
rm -rf "$dest"
mkdir -p "$dest"

list_files() {
  if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$top" ls-files -z --cached --others --exclude-standard
  else
    find . \( -name .git -o -name .venv -o -name .build -o -name .ansible -o -name __pycache__ \
      -o -name .pytest_cache -o -name .ruff_cache -o -path ./tests/output \) -prune \
      -o \( -type f -o -type l \) -printf '%P\0'
  fi
}
# keep only files that still exist (a file deleted but not yet committed is still in the index)
list_files | while IFS= read -r -d '' f; do
  if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
done | tar --null -T - -cf - | tar -xf - -C "$dest"

cd "$dest"
# The copy lies inside this repository's work tree, where .build/ is ignored: ansible-test would
# find the outer .git and see no files.  A scratch repository of its own (nothing is committed;
# ansible-test lists untracked files) makes the copy its own content root.
git init -q .
echo "sanity.sh: ansible-test sanity in $dest"
t0=$SECONDS
rc=0
ansible-test sanity --color no --python "${SANITY_PYTHON:-3.11}" "$@" || rc=$?
echo "sanity.sh: finished in $((SECONDS - t0))s, exit $rc"
exit $rc
