"""CPU seconds by process group, read from ``/proc`` before and after each
measured operation: the figures that barely move with machine load.

A group is every process of one service: the S3 server, all gunicorn
processes of a function (master and workers, and anything they start), and
the client (this process, its threads and the children it waited for: rclone,
fresh interpreters).

A process's CPU time is read from its CPU-time clock (``clock_gettime`` on
the clock id ``clock_getcpuclockid(3)`` would give; Linux lets any process
read another's): the scheduler's nanosecond run time of every thread of the
process, ended threads included (``thread_group_cputime`` in the kernel's
``kernel/sched/cputime.c``). ``/proc/<pid>/stat``'s utime + stime count the
same in 10 ms ticks, each tick charged to whatever ran when it fell: at
0.2 CPU-s per GiB that is 1-2 ticks of noise a run, which flipped the
crc32c verdict between runs. The ticks remain the fallback where the clock
cannot be read.
"""
from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

#: the group name of the measuring process itself
CLIENT = "client"

PidSource = Callable[[], Iterable[int]]


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that exist now."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                todo.extend(int(p) for p in task.read_text().split())
            except (OSError, ValueError):
                continue
    return out


def process_clock_id(pid: int) -> int:
    """The CPU-time clock of process ``pid`` (glibc's ``clock_getcpuclockid``:
    ``CPUCLOCK_SCHED`` of the process, encoded as ``(~pid << 3) | 2``)."""
    return (~pid << 3) | 2


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds of one process (all its threads, ended ones included) so far; 0 if gone."""
    try:
        return time.clock_gettime(process_clock_id(pid))
    except OSError:
        return process_tick_seconds(pid)


def process_tick_seconds(pid: int) -> float:
    """User + system CPU seconds from ``/proc/<pid>/stat`` (10 ms ticks); 0 if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process's CPU seconds, plus those of the children it has waited for.

    getrusage, not os.times: times(2) counts in clock ticks (10 ms), too
    coarse for an in-memory adler32 of 256 MiB (~15 ms).
    """
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """CPU seconds per group: ``snapshot()`` now, ``since(snapshot)`` the deltas.

    ``groups`` maps a name to the root pid of its process tree (the tree is
    walked at every snapshot, so workers started later count too).
    """

    def __init__(self, groups: Mapping[str, int] | None = None) -> None:
        self.groups: dict[str, int] = dict(groups or {})

    def add(self, name: str, root_pid: int) -> None:
        self.groups[name] = root_pid

    def remove(self, name: str) -> None:
        self.groups.pop(name, None)

    def snapshot(self) -> dict[str, float]:
        out = {name: sum(process_cpu_seconds(p) for p in process_tree(root)) for name, root in self.groups.items()}
        out[CLIENT] = own_cpu_seconds()
        return out

    def since(self, before: Mapping[str, float]) -> dict[str, float]:
        """CPU seconds each group used since ``before`` (groups present in both)."""
        now = self.snapshot()
        return {name: max(0.0, now[name] - before[name]) for name in now if name in before}
