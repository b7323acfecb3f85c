"""`python -m refsuite ...`: the CLI, plus the internal entries `_qm` and `_run` used to spawn
processes under their own names (refsuite-qm, refsuite-stpd, ...)."""

from __future__ import annotations

import sys


def entry(argv: list[str]) -> int:
    if argv and argv[0] == "_qm":
        from refsuite import qm

        return qm.main(argv[1:])
    if argv and argv[0] == "_run":
        from refsuite import daemons

        return daemons.main(argv[1:])
    from refsuite import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(entry(sys.argv[1:]))
