# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback of the benchmarks: writes the start/end time of the playbook and of each task
(first start, last host result) as JSON to ``$BENCH_TIMER_OUT`` when the playbook ends."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timer
type: aggregate
short_description: task timings for tests/bench
description: Writes playbook and task timings as JSON to the file named by BENCH_TIMER_OUT.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.time()
        self.tasks: list[dict[str, Any]] = []
        self.by_uuid: dict[str, dict[str, Any]] = {}

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self.started = time.time()

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        entry = self.by_uuid.get(task._uuid)
        if entry is None:
            entry = {"name": task.get_name(), "start": time.time(), "end": None, "results": 0}
            self.by_uuid[task._uuid] = entry
            self.tasks.append(entry)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self.v2_playbook_on_task_start(task, False)

    def _result(self, result: Any, *args: Any, **kwargs: Any) -> None:
        entry = self.by_uuid.get(result._task._uuid)
        if entry is not None:
            entry["end"] = time.time()
            entry["results"] += 1

    v2_runner_on_ok = _result
    v2_runner_on_failed = _result
    v2_runner_on_skipped = _result
    v2_runner_on_unreachable = _result

    def v2_playbook_on_stats(self, stats: Any) -> None:
        path = os.environ.get("BENCH_TIMER_OUT")
        if not path:
            return
        hosts = sorted(stats.processed.keys())
        summary = {host: stats.summarize(host) for host in hosts}
        data = {"start": self.started, "end": time.time(), "tasks": self.tasks, "stats": summary}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
