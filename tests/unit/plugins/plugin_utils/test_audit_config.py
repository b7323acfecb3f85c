# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit's configuration is checked on the controller before any host is contacted."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.daemonops.suite.plugins.plugin_utils import audit_config as ac


def check(
    variables: dict[str, dict[str, Any]], groups: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    groups = groups or {}
    return ac.check_audit_config(
        "all", list(variables), lambda h: variables[h], lambda h: groups.get(h, ["server"])
    )


def test_valid_fleet() -> None:
    result = check({"a": {}, "b": {"health_audit_roles": ["client"]}})
    assert result == {"hosts": 2, "profiles": ["refsuite"]}


def test_no_host_is_an_error() -> None:
    with pytest.raises(ac.AuditConfigError, match="pattern 'all' matches no host"):
        check({})


def test_every_problem_is_listed_by_host() -> None:
    with pytest.raises(ac.AuditConfigError) as err:
        check(
            {
                "a": {"health_audit_profile": "refsuit"},
                "b": {"health_audit_roles": ["serverr"]},
                "c": {},
                "d": {"health_audit_probes": "maybe"},
            },
            {"c": ["webservers"]},
        )
    text = str(err.value)
    assert "4 problems, no host was contacted" in text
    assert "a: health_audit_profile 'refsuit': profile 'refsuit' is not shipped" in text
    assert "b: health_audit_roles serverr not a role of suite refsuite" in text
    assert "c: in no inventory group named like a role of suite refsuite" in text
    assert "d: " in text and "health_audit_probes" in text


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"health_audit_maintenance": [{"host": "a", "reason": "x"}]}, "'until' is required"),
        (
            {"health_audit_maintenance": [{"host": "a", "reason": "x", "until": "soon"}]},
            "is not a date",
        ),
        ({"health_audit_history": -1}, "health_audit_history: -1 is negative"),
        ({"health_audit_report_basename": "a/b"}, "is not a plain file name"),
        ({"health_audit_formats": ["pdf"]}, "health_audit_formats"),
    ],
)
def test_report_settings_are_checked(variables: dict[str, Any], message: str) -> None:
    with pytest.raises(ac.AuditConfigError, match=message):
        check({"a": variables})


def test_until_accepts_dates_and_times() -> None:
    assert ac.parse_until("2026-12-24").isoformat() == "2026-12-24T23:59:59+00:00"
    assert ac.parse_until("2026-12-24T18:00:00Z").hour == 18
