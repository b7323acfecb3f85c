# Copyright (c) daemonops.suite contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The words the collection answers with, defined once: the state of a daemon, the status of a
check, the verdict on a PID record, what ``service`` is asked for, and the status of a host in a
fleet audit.

Imported on the target (health, identity, stale, service) and on the controller (the audit
report, through the ``ansible_collections`` path like every controller plugin). The strings are
part of the documented results (docs/internals.md, "The health_info result"; docs/audit.md):
changing one is a breaking change for every playbook and report reader.
"""

from __future__ import annotations

# ---------------------------------------------------------------- a daemon (health_info)
ONLINE = "online"
"""Processes passing every rule run and nothing is wrong with them."""
OFFLINE = "offline"
"""No process passes the daemon's rules."""
DEGRADED = "degraded"
"""A process runs but something is wrong (port, count, probe, stale record)."""
UNUSED = "unused"
"""Disabled in the suite's configuration, or an optional daemon that is not running."""
DAEMON_STATES = (ONLINE, DEGRADED, OFFLINE, UNUSED)
"""Every daemon state, in the order reports list them."""
RUNNING_STATES = frozenset((ONLINE, DEGRADED))
"""States in which a process of the daemon runs."""
HEALTHY_STATES = frozenset((ONLINE, UNUSED))
"""States that do not fail a check."""

# ---------------------------------------------------------------- a check (health_info, service)
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"

# ---------------------------------------------------------------- a PID record
LIVE = "live"
"""Verdict: the recorded process is alive and is the daemon."""
STALE = "stale"
"""Verdict: the recorded process is gone, or is provably another program."""
INVALID = "invalid"
"""Verdict: the record holds no usable PID."""
UNKNOWN = "unknown"
"""Not known: a record that could not be judged here; in a report, a daemon state it does not
know."""
VERDICTS = (LIVE, STALE, INVALID, UNKNOWN)
"""What ``identity.judge`` answers (stale_pids ``records[].status``)."""
CONSISTENT = "consistent"
"""health_info ``pid_record.status`` for a LIVE record of a counted instance."""
MISSING = "missing"
"""health_info ``pid_record.status``: the store has no record for the daemon."""
NOT_APPLICABLE = "not_applicable"
"""health_info ``pid_record.status``: no store, or records not read."""

# ---------------------------------------------------------------- what service is asked for
STARTED = "started"
STOPPED = "stopped"
RESTARTED = "restarted"
RELOADED = "reloaded"
SERVICE_STATES = (STARTED, STOPPED, RESTARTED, RELOADED)

# ---------------------------------------------------------------- a host in a fleet audit
HOST_HEALTHY = "healthy"
HOST_UNHEALTHY = "unhealthy"
HOST_UNREACHABLE = "unreachable"
HOST_FAILED = "failed"
"""The health check itself failed on the host (or it left the play before it)."""
HOST_STATES = (HOST_HEALTHY, HOST_UNHEALTHY, HOST_UNREACHABLE, HOST_FAILED)
HOST_NOT_CHECKED = frozenset((HOST_UNREACHABLE, HOST_FAILED))
"""Hosts without a health result to show."""
