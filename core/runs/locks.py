"""One lock file (flock) per device: a run holds its devices' locks for as long as it trains."""

import contextlib
import fcntl
import os
import time
from pathlib import Path

from core.base.errors import RunError
from core.runs.store import _reason, active_run, store_root

LOCK_GRACE_S = 10.0  # how long a start waits for a finished worker to release the device


@contextlib.contextmanager
def device_lock(keys: str | list[str], runs_dir: Path | None = None, grace: float = LOCK_GRACE_S):
    """Hold the lock file (flock) of every device in `keys` or raise RunError; yields the open file
    descriptors, in the order of `keys`.

    A lock belongs to its open file, so a worker that inherits the descriptors keeps the devices for its
    whole life and the kernel releases them when the worker dies, however it dies.
    """
    root = store_root(runs_dir)
    fds: list[int] = []
    try:
        for key in [keys] if isinstance(keys, str) else keys:
            try:
                root.mkdir(parents=True, exist_ok=True)
                fd = os.open(root / f".lock-{key.replace(':', '-')}", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:  # a read-only or someone else's store: say so instead of a traceback
                raise RunError(f"cannot use the run store {root}: {_reason(exc)}") from None
            fds.append(fd)
            if not _try_lock(fd, key, root, grace):
                busy = active_run(key, root, races=True)
                which = f" (run {busy.id})" if busy else ""
                raise RunError(f"a run is already training on {key}{which}: stop it or wait for it to finish")
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def _try_lock(fd: int, key: str, root: Path, grace: float = LOCK_GRACE_S) -> bool:
    """Take the lock; while no run is active, its holder is a worker that is exiting: wait for it."""
    deadline = time.monotonic() + grace
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if active_run(key, root, races=True) is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
