"""What every benchmark script does the same way: echo its own command line, stop on SIGTERM."""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Sequence


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    """SIGTERM stops a benchmark like Ctrl-C does: through its cleanup, nothing left running."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run, as printed at the top of its report."""
    python = os.path.relpath(sys.executable)
    python = sys.executable if python.startswith("..") else python
    return shlex.join([python, "-m", module, *(sys.argv[1:] if argv is None else argv)])
