# shellcheck shell=bash
# Source this file: `. scripts/env.sh`. Activates the project's virtualenv and points Ansible,
# podman and Python at this checkout.
_top=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
export DAEMONOPS_TOP="$_top"
if [ -f "$_top/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$_top/.venv/bin/activate"
fi
mkdir -p "$_top/.build/collections/ansible_collections/daemonops"
if [ ! -e "$_top/.build/collections/ansible_collections/daemonops/suite" ]; then
  ln -sfn "$_top" "$_top/.build/collections/ansible_collections/daemonops/suite"
fi
export ANSIBLE_CONFIG="$_top/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$_top/.build/collections"
export CONTAINERS_CONF="$_top/.build/containers.conf"
export PYTHONPATH="$_top/.build/collections${PYTHONPATH:+:$PYTHONPATH}"
export DAEMONOPS_MOLECULE_IMAGE="${DAEMONOPS_MOLECULE_IMAGE:-localhost/daemonops-base:latest}"
unset _top
