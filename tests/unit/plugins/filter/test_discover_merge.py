# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The discover_merge filter plugin's entry point (tests/integration/test_discover.py runs it
through ansible's templating)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleError

from ansible_collections.daemonops.suite.plugins.filter.discover_merge import FilterModule


def proposal(role, port):
    return {
        "suite": {"name": "acme", "roles": [role]},
        "daemons": [
            {"name": "master", "roles": [role], "match": {"cmdline": "^acme( |$)"},
             "ports": [{"port": port, "probe": {"type": "tcp"}}]},
        ],
    }  # fmt: skip


MERGE = FilterModule().filters()["discover_merge"]


def test_filter_merges():
    merged = MERGE([proposal("server", 80), proposal("client", 80)], name="fleet")
    assert merged["suite"] == {"name": "fleet", "roles": ["server", "client"]}
    assert merged["daemons"][0]["roles"] == ["server", "client"]


def test_filter_error_names_the_daemon():
    with pytest.raises(AnsibleError, match=r"discover_merge: daemon 'master': ports differ"):
        MERGE([proposal("server", 80), proposal("client", 81)])
    with pytest.raises(AnsibleError, match=r"expects a list of proposals, got str"):
        MERGE("x")
