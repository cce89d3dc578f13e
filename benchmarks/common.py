"""What every benchmark script does the same way: echo its own command line, stop on SIGTERM,
and tear down what it started."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from encore.local import ManagedProcess


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_as_script(main: Callable[[], int], name: str, failures: tuple[type[Exception], ...] = ()) -> NoReturn:
    """`python -m benchmarks.<name>`: exit with main's code; Ctrl-C (130) and an expected failure (1)
    end with one line, not a traceback (main has stopped what it started by then)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)
    except failures as exc:
        print(f"\n{name}: {exc}", file=sys.stderr)
        sys.exit(1)


def stop_on_sigterm() -> None:
    """SIGTERM stops a benchmark like Ctrl-C does: through its cleanup, nothing left running."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run, as printed at the top of its report."""
    python = os.path.relpath(sys.executable)
    python = sys.executable if python.startswith("..") else python
    return shlex.join([python, "-m", module, *(sys.argv[1:] if argv is None else argv)])


def tear_down(processes: Sequence[ManagedProcess], workdir: Path, finished: bool) -> None:
    """Stop what a benchmark started, newest first (a second Ctrl-C must not cut that short); keep
    the logs only when it did not finish."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    for process in reversed(processes):
        with contextlib.suppress(Exception):
            process.stop()
    signal.signal(signal.SIGINT, previous)
    if finished:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"\nthe benchmark did not finish; logs are kept in {workdir}", file=sys.stderr)
