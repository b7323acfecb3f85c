"""refsuite: the reference suite of daemonops.suite (stdlib only)."""

from __future__ import annotations

import os

__version__ = "0.1.0"

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PACKAGE_PARENT = os.path.dirname(PACKAGE_DIR)
