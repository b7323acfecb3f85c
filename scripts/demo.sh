#!/usr/bin/env bash
# The main job (README: `make demo`): deploy the embedded default inventory (refsuite, server role,
# on localhost) with playbooks/site.yml, then print its health.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/bootstrap.sh
# shellcheck disable=SC1091
. scripts/env.sh
ansible-playbook playbooks/site.yml "$@"
echo
echo "=== health (daemonops.suite.health_info)"
ansible-playbook playbooks/health_audit.yml -e health_audit_report_dir="$top/reports/demo"
echo
echo "=== refsuite status"
/opt/refsuite/bin/refsuite --config /etc/refsuite/refsuite.ini status
