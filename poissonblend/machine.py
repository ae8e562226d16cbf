"""What this machine lets a run use: CPUs and memory, respecting container and batch-job limits."""

from __future__ import annotations

import os
import signal
from pathlib import Path

CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
"""Where a container's (or a batch job's) memory limit is, cgroup v2 then v1."""


def memory_bytes() -> int | None:
    """The RAM this process may use: the machine's, or its cgroup's limit if lower (None: unknown)."""
    try:
        limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    except (AttributeError, ValueError, OSError):  # pragma: no cover - no sysconf (Windows)
        limits = []
    for path in CGROUP_LIMITS:
        try:
            limits.append(int(Path(path).read_text().strip()))
        except (OSError, ValueError):  # no such file, or "max": no limit
            continue
    return min(limits) if limits else None


CGROUP_CPU_QUOTAS = (("/sys/fs/cgroup/cpu.max",),
                     ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"))
"""Where a container's (or a batch job's) CPU quota is: cgroup v2's file of "quota period",
then cgroup v1's quota file and period file."""


def usable_cpus() -> int:
    """CPUs this process may use: those it may run on, or its cgroup's CPU quota if lower (>= 1)."""
    try:
        n = len(os.sched_getaffinity(0))  # a Slurm job's or taskset's CPUs
    except AttributeError:  # pragma: no cover - no affinity call (macOS, Windows)
        n = os.cpu_count() or 1
    for paths in CGROUP_CPU_QUOTAS:
        try:
            words = " ".join(Path(p).read_text() for p in paths).split()
            quota, period = int(words[0]), int(words[1])  # "max" (v2) fails here: no quota
        except (OSError, ValueError, IndexError):
            continue
        if quota > 0 and period > 0:  # v1 says -1 for no quota
            n = min(n, -(-quota // period))  # 1.5 CPUs: 2 processes still get more done than 1
    return max(1, n)


PR_SET_PDEATHSIG = 1
"""Linux prctl(2) option: the signal a process receives when the thread that forked it ends."""


def end_with_parent(parent_pid: int) -> None:
    """In a forked worker: end this process as soon as its parent dies, even by ``kill -9``.

    Linux delivers SIGKILL to it when the parent goes (``prctl(PR_SET_PDEATHSIG)``);
    if the parent died before that was set up, the worker ends now. Elsewhere
    (no prctl) nothing changes. Pass it as a pool's ``initializer`` with
    ``initargs=(os.getpid(),)``.
    """
    try:
        import ctypes  # only workers pay for it

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
