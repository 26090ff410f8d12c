"""Is a process still running? Kept free of PyTorch: the spare worker asks before importing it."""

import os
from pathlib import Path


def pid_alive(pid) -> bool:
    """True while `pid` is a running process of this user: not exited, and not a zombie (exited,
    waiting for its parent to collect it). The workers and the spare are this user's processes, so
    a pid that belongs to another user has been reused: it counts as gone."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: the signal check is all there is
    return state != "Z"
