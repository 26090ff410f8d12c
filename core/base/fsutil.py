"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

import json
import os
import tempfile
from pathlib import Path

from core.base.procs import pid_alive

TMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, make_parents: bool = True) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then `os.replace` it into place."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's pid in the name (.<name>.<pid>.<random>.tmp) lets whoever finds the writer dead delete
    # exactly its leftovers, never a temp file another process is writing right now.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike, obj, *, make_parents: bool = True) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    atomic_write_bytes(path, data, make_parents=make_parents)


def remove_stale_temps(folder: str | os.PathLike, *, pid: int | None = None) -> list[Path]:
    """Delete temp files left by writers killed mid-write (only process `pid`'s when given); returns them."""
    removed = []
    for p in Path(folder).glob(f".*{TMP_SUFFIX}"):
        if pid is not None and _writer_pid(p) != str(pid):
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def remove_orphaned_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files whose writer is no longer running on this machine; returns them.

    For a run whose processes died together (a launcher and the ranks it started), where the one pid the
    run recorded is not the writer's. A temp file of a live writer is never touched."""
    removed = []
    for p in Path(folder).glob(f".*{TMP_SUFFIX}"):
        pid = _writer_pid(p)
        if pid is None or not pid.isdigit() or pid_alive(int(pid)):
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _writer_pid(temp: Path) -> str | None:
    parts = temp.name.split(".")  # ["", name..., pid, random, "tmp"]; mkstemp's random part has no dot
    return parts[-3] if len(parts) >= 5 else None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
