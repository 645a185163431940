"""onnxruntime session settings for ferkit models (CPU).

- Threads: the physical cores this process may run on (hyper-threads share one core's arithmetic units,
  so an extra thread per core adds contention, not speed); ``threads=`` overrides.
- Graph optimisation: ``ORT_ENABLE_ALL`` (constant folding, Conv+Relu fusion and, for int8 files, QDQ
  pairs turned into QLinearConv/QLinearMatMul). Measured by benchmarks/bench_classify.py --opt-levels:
  the lower levels leave the int8 graphs as DequantizeLinear + float Conv and run them slower than float32.
"""

from __future__ import annotations

import os
from pathlib import Path


def physical_cores() -> int:
    """Physical cores among the CPUs this process may use (Linux /proc/cpuinfo), else the CPU count."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        allowed = None
    try:
        cores, proc, phys = set(), None, "0"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = (s.strip() for s in line.partition(":"))
            if key == "processor":
                proc = int(val)
            elif key == "physical id":
                phys = val
            elif key == "core id" and (allowed is None or proc in allowed):
                cores.add((phys, val))
        if cores:
            return len(cores)
    except (OSError, ValueError):
        pass
    return len(allowed) if allowed else (os.cpu_count() or 1)


def session_options(threads: int | None = None):
    """SessionOptions: ``threads`` intra-op threads (default: physical cores), one inter-op thread,
    full graph optimisation, warnings only."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads) if threads else physical_cores()
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so
