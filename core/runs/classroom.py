"""What a shared server keeps of its learners in the run store: the display names they gave (by owner id,
never by secret) and, for the teacher, how many answered each Learn page prediction and how many were
right (counts only: no names)."""

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from core.base.fsutil import atomic_write_json
from core.base.runfiles import read_object
from core.runs.store import store_root

NAMES_FILE = ".learners.json"  # {owner id: display name}
ANSWERS_FILE = ".answers.json"  # {moment id: {"question": str, "by": {owner id: right}}}
NAME_MAX = 40


@contextmanager
def _locked(path: Path):
    """The JSON object in `path`, to change in place under a lock; written back at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = _read(path)
        yield data
        atomic_write_json(path, data)
    finally:
        os.close(fd)


def _read(path: Path) -> dict:
    try:
        return read_object(path)
    except (OSError, ValueError):  # none yet, or unreadable: start again rather than refuse a name
        return {}


def name_of(owner: str, root: Path | None = None) -> str:
    found = _read(store_root(root) / NAMES_FILE).get(owner)
    return found if isinstance(found, str) else ""


def set_name(owner: str, text: str, root: Path | None = None) -> str:
    """Keep `owner`'s display name, cleaned (one line, at most NAME_MAX characters); returns it."""
    cleaned = " ".join(str(text).split())[:NAME_MAX]
    with _locked(store_root(root) / NAMES_FILE) as names:
        names[owner] = cleaned
    return cleaned


def record_answer(moment: str, question: str, owner: str, right: bool, root: Path | None = None) -> None:
    """A learner's first committed prediction of `moment` (later ones do not change it)."""
    with _locked(store_root(root) / ANSWERS_FILE) as answers:
        entry = answers.setdefault(moment, {"question": question, "by": {}})
        entry["by"].setdefault(owner, bool(right))


def answer_counts(root: Path | None = None) -> list[dict]:
    """Each moment's {"moment", "question", "answered", "right"}, the most missed first."""
    counts = []
    for moment, entry in _read(store_root(root) / ANSWERS_FILE).items():
        by = entry.get("by", {}) if isinstance(entry, dict) else {}
        right = sum(1 for value in by.values() if value is True)
        counts.append({"moment": moment, "question": str(entry.get("question", "")), "answered": len(by),
                       "right": right})  # fmt: skip
    return sorted(counts, key=lambda c: (-(c["answered"] - c["right"]), c["moment"]))
