#!/usr/bin/env bash
# shellcheck disable=SC2317  # stage_* functions are called indirectly through run_stage
# The project's test command (README: `make test`). Installs what it needs, then runs every gate:
#   bootstrap ruff unit integration compat bench docs argspec changelog sanity lint molecule
# Run a subset with `scripts/test.sh unit integration`; SKIP_MOLECULE=1 leaves molecule out.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
exec </dev/null

ALL=(bootstrap ruff unit integration compat bench docs argspec changelog sanity lint molecule)
if [ $# -gt 0 ]; then stages=("$@"); else stages=("${ALL[@]}"); fi
if [ "${SKIP_MOLECULE:-0}" = 1 ]; then
  stages=("${stages[@]/molecule}")
fi

results=()
failed=0
run_stage() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== stage $name: $*"
  if "$@"; then
    results+=("PASS $name $((SECONDS - t0))s")
  else
    results+=("FAIL $name $((SECONDS - t0))s")
    failed=1
  fi
}

stage_bootstrap() { bash scripts/bootstrap.sh; }
stage_ruff() { ruff check . && ruff format --check .; }
stage_unit() {
  pytest -q -p no:cacheprovider tests/unit \
    --cov=plugins/module_utils/_suite --cov=plugins/plugin_utils \
    --cov-report=term --cov-report=xml:.build/coverage.xml --cov-fail-under=90
}
stage_integration() { pytest -q -p no:cacheprovider tests/integration; }
stage_compat() { bash scripts/compat.sh; }
stage_bench() { pytest -q -p no:cacheprovider tests/bench/test_bench_smoke.py; }
stage_docs() { python scripts/gen-docs.py --check; }
stage_argspec() { python scripts/check_argument_specs.py; }
stage_changelog() { bash scripts/changelog-lint.sh; }
stage_sanity() { bash scripts/sanity.sh; }
stage_lint() { bash scripts/lint.sh; }
stage_molecule() { bash scripts/build-image.sh && molecule test --all; }

for s in "${stages[@]}"; do
  [ -n "$s" ] || continue
  if [ "$s" = bootstrap ]; then
    run_stage bootstrap stage_bootstrap
    if [ $failed = 1 ]; then break; fi
    continue
  fi
  # shellcheck disable=SC1091
  . scripts/env.sh
  case "$s" in
    ruff|unit|integration|compat|bench|docs|argspec|changelog|sanity|lint|molecule) run_stage "$s" "stage_$s" ;;
    *) echo "test.sh: unknown stage '$s'; stages are: ${ALL[*]}" >&2; exit 2 ;;
  esac
done

echo "=== summary"
printf '%s\n' "${results[@]}"
exit $failed
