#!/usr/bin/env bash
# Checks the changelog: fragment syntax (changelogs/fragments/*.yml) and changelogs/changelog.yaml.
# Usage: scripts/changelog-lint.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f scripts/env.sh ]; then
  # shellcheck disable=SC1091
  . scripts/env.sh
fi
antsibull-changelog lint
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
echo "changelog-lint: OK"
