"""What the machine lets a run use: memory and CPUs, under container and batch-job limits."""

from __future__ import annotations

import os

from poissonblend import machine


def test_usable_memory_is_the_lower_of_the_machine_and_its_cgroup_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "CGROUP_LIMITS", ())
    ram = machine.memory_bytes()  # the physical RAM alone
    assert ram is not None and ram > 2**28
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("max\n")  # cgroup v2 without a limit
    v1.write_text(f"{2**30}\n")  # a 1 GiB job
    monkeypatch.setattr(machine, "CGROUP_LIMITS", (str(v2), str(v1)))
    assert machine.memory_bytes() == min(ram, 2**30)
    v1.write_text(f"{ram * 4}\n")  # a limit above the machine's RAM changes nothing
    assert machine.memory_bytes() == ram


def test_usable_cpus_are_the_affinity_or_the_cgroup_quota_if_lower(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "CGROUP_CPU_QUOTAS", ())
    mine = len(os.sched_getaffinity(0))
    assert machine.usable_cpus() == mine
    v2 = tmp_path / "cpu.max"
    quota, period = tmp_path / "cpu.cfs_quota_us", tmp_path / "cpu.cfs_period_us"
    monkeypatch.setattr(machine, "CGROUP_CPU_QUOTAS", ((str(v2),), (str(quota), str(period))))
    v2.write_text("max 100000\n")  # cgroup v2 without a quota
    quota.write_text("-1\n")  # cgroup v1 without a quota
    period.write_text("100000\n")
    assert machine.usable_cpus() == mine
    v2.write_text("50000 100000\n")  # half a CPU: still one process
    assert machine.usable_cpus() == 1
    v2.write_text(f"{(mine + 8) * 100000} 100000\n")  # a quota above the CPUs changes nothing
    assert machine.usable_cpus() == mine
