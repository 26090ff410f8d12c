"""Is a process still running? Kept free of PyTorch: the spare worker asks before importing it."""

import os
from pathlib import Path

import psutil

START_TOLERANCE_S = 1.0  # psutil derives the start time from boot time and clock ticks: tiny jitter


def pid_alive(pid, *, started: float | None = None) -> bool:
    """True while `pid` is a running process of this user: not exited, and not a zombie (exited,
    waiting for its parent to collect it). The workers and the spare are this user's processes, so
    a pid that belongs to another user has been reused: it counts as gone. With `started` (what
    process_started said when the pid was recorded), a process that started at another time is
    another process that got the same pid (after a reboot, say): gone too."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    if started is not None:
        now = process_started(pid)
        if now is not None and abs(now - started) > START_TOLERANCE_S:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: the signal check is all there is
    return state != "Z"


def process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None if it cannot be told."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError, ValueError):
        return None
