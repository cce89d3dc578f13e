"""The flow as several Bytewax processes: on one machine (`encore flow --processes N`), or one
process of a flow spread over machines (`encore flow --process-id I --addresses "h0:p0;h1:p1"`).

How Bytewax 0.21 shares the work (docs: "Workers and Parallelization", "Rescaling", "Recovery"):
- **Kafka partitions.** Every worker lists every partition of a topic; the cluster's first worker
  makes one worker the *primary* of each partition, balancing the count (partitions in order, each
  to the worker with the fewest so far), and only that worker reads it. So at most as many
  processes as `encore.events` has partitions do input work; more idle on it.
- **Keyed state.** `stateful_batch` (the per-user profile step) routes each `(user_id, event)` to
  the worker that owns `user_id` (a fixed hash of the key over the workers): an *exchange*, pickled
  and sent over TCP when that worker is in another process.
- **Order.** One partition is read by one worker in offset order; a user's events all sit in one
  partition (key = `user_id`), leave that worker on one channel to one owner (channels are FIFO)
  and are applied epoch by epoch, so each user's events are applied in partition order with any
  number of processes. Across partitions there is no order, as with one process.
- **Recovery.** Partitions (SQLite files, `python -m bytewax.recovery DIR N`) are made once for
  the whole cluster, never per process. Each worker opens the partitions it finds in its `-r`
  directory; the cluster as a whole must see every partition, any worker may see none, and a
  partition several workers see is used by one. On one machine all processes share one directory.
  Across machines, each `part-*` file (with its `-wal`/`-shm`) must live on exactly one machine (or
  on storage all of them mount): a copy on two machines would diverge. Resuming needs every
  partition again, and may use another number of processes (snapshots are re-routed by key).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from encore.bytewax_api import for_process
from encore.local import LOOPBACK, _die_with_parent, free_port
from encore.settings import Settings

log = logging.getLogger("encore.flow")

STOP_TIMEOUT_S = 20.0
"""How long the processes get to exit after SIGTERM before SIGKILL (compose allows 30 s)."""
PROCESS_ID_ENV = "BYTEWAX_PROCESS_ID"
"""Also set for each process (Bytewax reads `-i` from it too): the flow names itself in its logs."""


class FlowArgumentError(ValueError):
    """`--processes`, `--process-id` and `--addresses` that do not fit together."""


def parse_addresses(addresses: str) -> list[str]:
    """`"h0:p0;h1:p1"` as a list, each checked to be `host:port`.

    >>> parse_addresses("flow-0:2101; flow-1:2101")
    ['flow-0:2101', 'flow-1:2101']
    """
    found = [a.strip() for a in addresses.split(";") if a.strip()]
    if not found:
        raise FlowArgumentError("--addresses names no process (expected \"host:port;host:port\")")
    for address in found:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise FlowArgumentError(f"--addresses: {address!r} is not host:port")
    return found


def recovery_partition_count(settings: Settings, processes: int) -> int:
    """How many recovery partitions a new recovery directory gets: fixed for its lifetime, so as
    many as the most workers worth running, the partition count of the topics (or the processes,
    if more)."""
    return max(settings.partitions, processes)


def init_recovery(directory: Path, count: int) -> None:
    """Create `count` empty recovery partitions in `directory` (Bytewax's own initialiser)."""
    import sys

    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(directory), str(count)],
                   check=True, stdout=subprocess.DEVNULL)
    log.info("initialised %d recovery partitions in %s", count, directory)


def has_recovery_partitions(directory: Path) -> bool:
    return any(directory.glob("part-*.sqlite3"))


def prepare_member_recovery(settings: Settings, process_id: int, processes: int) -> None:
    """Recovery for one process of a flow spread over machines.

    Process 0 creates every partition the first time, when its recovery directory does not exist
    yet; the others start with an empty directory. (Only a missing directory counts as the first
    time: partitions an operator moved to other machines leave process 0's directory in place.)
    """
    directory = settings.recovery_dir
    if directory.exists():
        return
    if process_id == 0:
        init_recovery(directory, recovery_partition_count(settings, processes))
    else:
        directory.mkdir(parents=True, exist_ok=True)


def run_local_cluster(settings: Settings, processes: int, env: Mapping[str, str],
                      command: Sequence[str]) -> int:
    """Run `processes` Bytewax processes of the flow on free loopback ports and supervise them.

    `command` is the Bytewax command line without `-i/-a` (recovery partitions already made).
    SIGTERM or SIGINT stops them all (exit 0). If one exits, the others are stopped and the exit
    code is non-zero: a Bytewax cluster cannot go on without one of its processes, and whoever
    runs `encore flow` (compose, systemd, `encore up`) restarts the whole flow, which resumes from
    its recovery snapshots.
    """
    addresses = ";".join(f"{LOOPBACK}:{free_port()}" for _ in range(processes))
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("flow: %s received; stopping %d processes", signal.Signals(signum).name, processes)
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    children: list[subprocess.Popen[bytes]] = []
    failed: tuple[int, int] | None = None
    ended: list[tuple[int, int]] = []
    try:
        for process_id in range(processes):
            child_env = {**for_process(env, process_id), PROCESS_ID_ENV: str(process_id)}
            children.append(subprocess.Popen(
                [*command, "-i", str(process_id), "-a", addresses], env=child_env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops them in turn
                preexec_fn=_die_with_parent,  # and they end if the supervisor is killed
            ))
        log.info("flow: %d Bytewax processes (pids %s) on %s", processes,
                 ", ".join(str(c.pid) for c in children), addresses)
        while failed is None and not stop.is_set():
            for process_id, child in enumerate(children):
                code = child.poll()
                if code is not None:
                    failed = (process_id, code)
                    break
            else:
                stop.wait(0.2)
        # When one process dies its peers soon fail too: name every one that ended by itself.
        ended = [(i, code) for i, child in enumerate(children) if (code := child.poll()) is not None]
    finally:
        _stop_all(children)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failed is None:
        return 0
    for process_id, code in ended:
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        log.error("flow: process %d ended (%s)", process_id, how)
    log.error("flow: stopped the flow's other processes; exiting")
    code = failed[1]
    return code if code > 0 else 1


def _stop_all(children: Sequence[subprocess.Popen[bytes]], timeout_s: float = STOP_TIMEOUT_S) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("flow: process %d did not stop in %.0fs; killing it", child.pid, timeout_s)
            child.kill()
            child.wait()
