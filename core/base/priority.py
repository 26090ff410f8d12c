"""Process priority: a training process lets interactive work (the server, the browser) go first.

Kept free of PyTorch, so a process can lower its priority before it imports it.
"""

import contextlib
import os
from pathlib import Path

WORKER_NICE = int(os.environ.get("STUDIO_WORKER_NICE", "10"))  # dashboard runs yield the CPU to them


def lower_priority(nice: int) -> None:
    """Let interactive work (the dashboard's server, the browser) go first when it needs the CPU.

    With autogroup scheduling (Linux's default) the CPU is shared between sessions before nice values
    count, and the worker has a session of its own: so its session's autogroup is lowered as well.
    """
    if nice <= 0:
        return
    os.nice(nice)
    with contextlib.suppress(OSError):  # no autogroup scheduling here: the nice value alone applies
        Path("/proc/self/autogroup").write_text(str(nice))
