"""Fixtures for the refsuite integration tests: real processes, real sockets, tmp paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from refsuite_testlib import RefSuite


@pytest.fixture
def refsuite_factory(tmp_path: Path) -> Iterator[Callable[..., RefSuite]]:
    """Make RefSuite instances (config written, nothing started); everything is torn down."""
    made: list[RefSuite] = []

    def make(role: str = "server", name: str = "rs", **suite: Any) -> RefSuite:
        root = tmp_path / name
        root.mkdir()
        instance = RefSuite(root, role, **suite)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.cleanup()


@pytest.fixture
def started_server(refsuite_factory: Callable[..., RefSuite]) -> RefSuite:
    suite = refsuite_factory("server")
    suite.start()
    return suite
