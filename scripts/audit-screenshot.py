#!/usr/bin/env python
"""Render the synthetic 300-host audit of tests/integration/test_health_audit.py (with an earlier
audit to compare with, a drifted host, a restarted daemon and a silenced host) and take the
screenshots of docs/audit.md with headless Chromium.

Usage: scripts/audit-screenshot.py [OUTDIR]   (default docs/; after `. scripts/env.sh`)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(TOP / ".build" / "collections"), str(TOP / "tests" / "integration")]

from test_health_audit import CHROMIUM, synthetic_fleet  # noqa: E402

from ansible_collections.daemonops.suite.plugins.plugin_utils import (  # noqa: E402
    audit_report as ar,
)


def fleet(now: float) -> dict:
    results = synthetic_fleet()
    for result in results.values():
        if isinstance(result.get("daemons"), dict):
            result.update(version="0.1.0", config_checksum="sha256:1c4e0a")
    return results


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else TOP / "docs"
    now = time.time()
    before = fleet(now)
    sshd = before["node011.dc2"]["daemons"]["sshd"]
    sshd.update(state="offline", pids=[], problems=["sshd offline"])
    previous = json.loads(ar.to_json(ar.build_report(before, now - 3600, started=now - 3640)))
    after = fleet(now)
    after["node044.dc2"]["config_checksum"] = "sha256:9a0b77"
    after["node037.dc1"]["daemons"]["ui"]["start_time"] = now - 300
    after["node053.dc2"]["daemons"]["ui"].update(
        state="degraded", problems=["ui port 11401 held by nginx[812]"]
    )
    maintenance = [{"host": "node021.dc0", "reason": "disk swap, OPS-1432", "until": "2099-01-01"}]
    report = ar.build_report(after, now, started=now - 42.5, maintenance=maintenance)
    report["since_last"] = ar.compare_reports(previous, report)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "health_audit.html"
        page.write_text(ar.to_html(report))
        for name, fragment, size in (
            ("audit-large-fleet.png", "", "1280,1100"),
            ("audit-large-fleet-filtered.png", "#only-unhealthy", "1280,1720"),
        ):
            subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--hide-scrollbars", "--virtual-time-budget=3000",
                 f"--user-data-dir={tmp}/profile-{name}",
                 f"--window-size={size}", f"--screenshot={out / name}",
                 page.as_uri() + fragment],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
