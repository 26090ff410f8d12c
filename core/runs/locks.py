"""Lock files (flock) per device, one per place (core.runs.places): a run holds one place on each of its
devices for as long as it trains."""

import contextlib
import fcntl
import os
import time
from pathlib import Path

from core.base.errors import RunError
from core.runs.store import _reason, active_run, store_root

LOCK_GRACE_S = 10.0  # how long a start waits for a finished worker to release the device


@contextlib.contextmanager
def device_lock(
    keys: str | list[str], runs_dir: Path | None = None, grace: float = LOCK_GRACE_S, places: int = 1
):
    """Hold a place (a lock file, flock) on every device in `keys` or raise RunError; yields the open file
    descriptors, in the order of `keys`. A device has `places` places: `.lock-cpu`, then `.lock-cpu.1`...

    A lock belongs to its open file, so a worker that inherits the descriptors keeps the places for its
    whole life and the kernel releases them when the worker dies, however it dies.
    """
    root = store_root(runs_dir)
    fds: list[int] = []
    try:
        for key in [keys] if isinstance(keys, str) else keys:
            fd = _take_place(root, key, places, grace)
            if fd is None:
                busy = active_run(key, root, races=True)
                which = f" (run {busy.id})" if busy else ""
                held = "a run is" if places == 1 else f"{places} runs are"
                raise RunError(f"{held} already training on {key}{which}: stop it or wait for it to finish")
            fds.append(fd)
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def place_files(root: Path, key: str, places: int) -> list[Path]:
    name = f".lock-{key.replace(':', '-')}"
    return [root / (name if i == 0 else f"{name}.{i}") for i in range(places)]


def _take_place(root: Path, key: str, places: int, grace: float) -> int | None:
    """The descriptor of a free place's lock file, held; None when every place stays taken. While no run is
    active, a holder is a worker that is exiting: wait up to `grace` for it."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fds = [os.open(path, os.O_RDWR | os.O_CREAT, 0o644) for path in place_files(root, key, places)]
    except OSError as exc:  # a read-only or someone else's store: say so instead of a traceback
        raise RunError(f"cannot use the run store {root}: {_reason(exc)}") from None
    deadline = time.monotonic() + grace
    try:
        while True:
            for fd in fds:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                fds.remove(fd)
                return fd
            if time.monotonic() > deadline or active_run(key, root, races=True) is not None:
                return None
            time.sleep(0.05)
    finally:
        for fd in fds:
            os.close(fd)


def free_places(root: Path, key: str, places: int) -> int:
    """How many of the device's places no process holds now (each is tried and let go at once)."""
    return sum(1 for path in place_files(root, key, places) if is_held(path) is False)


def is_held(path: Path) -> bool | None:
    """Whether a process holds the lock file `path` (tried and let go at once); None: it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
