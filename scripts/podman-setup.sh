#!/usr/bin/env bash
# Writes the containers.conf podman needs on these machines (runc, no default ulimits).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$top/.build"
cat > "$top/.build/containers.conf" <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
