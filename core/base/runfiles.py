"""One careful reader for the JSON files of a run, so a damaged file spoils its own run and no other."""

import json
import math
import os
import re
import stat
from pathlib import Path

from core.base.errors import StudioError

OBJECT_MAX_BYTES = 1 << 20  # config.json and status.json are about 1 KB; anything this big is not ours
LINE_MAX_BYTES = 1 << 16  # one metrics.jsonl row (an epoch row with its confusion matrix is about 2 KB)
MAX_DEPTH = 16  # our files nest 3 deep; json's C parser recurses per level and overflows near 5000
MARKER = ".studio-run"  # written by core.runs.create_run: only a folder holding it is ever trained in
# What a run id (the run's folder name) may be: core.runs.new_run_id's "20261205-082812-ab12", or a name
# given with --run-dir. A folder name is read as an id in links, downloads, exported scripts and the
# sidebar, so one with quotes, newlines, spaces or Markdown in it is no run of the store's.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
RUN_ID_WORDS = "letters, digits, '-', '_' and '.', at most 100, starting with a letter or digit"


def is_run_id(name: object) -> bool:
    return isinstance(name, str) and RUN_ID.fullmatch(name) is not None


class DamagedRunFile(StudioError):
    """A run file exists but is not what the run store writes; the message says what is wrong."""


def read_object(path: Path, max_bytes: int = OBJECT_MAX_BYTES) -> dict:
    """The JSON object in `path`; FileNotFoundError when it is missing, DamagedRunFile when it is not
    a regular file, cannot be read, is too big, is not UTF-8 or JSON, nests too deep or is no object."""
    try:
        data = _read_regular(path, max_bytes)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DamagedRunFile(f"{path.name} cannot be read: {exc.strerror or exc}") from None
    try:
        return parse_object(data)
    except DamagedRunFile as exc:
        raise DamagedRunFile(f"{path.name} {exc}") from None


def _read_regular(path: Path, max_bytes: int) -> bytes:
    # O_NONBLOCK: a FIFO put in the file's place must not hang every page that lists the runs.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise OSError(0, f"larger than {max_bytes:,} bytes")
    return data


def parse_object(data: bytes) -> dict:
    """`data` as a JSON object, or DamagedRunFile saying why it is not one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedRunFile("is not UTF-8 text") from None
    if _too_deep(text):
        raise DamagedRunFile(f"nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_int=_whole, parse_float=_real)
    except _TooBig as exc:
        raise DamagedRunFile(str(exc)) from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise DamagedRunFile(f"is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise DamagedRunFile(f"holds a JSON {_JSON_NAMES.get(type(value), 'value')}, not an object")
    return value


NUMBER_MAX_DIGITS = 19  # int64's 9.2e18: no count, step, pid or seed of ours comes near it


class _TooBig(ValueError):
    pass


def _whole(text: str) -> int:
    """A JSON whole number; one of thousands of digits would raise ValueError in int() (Python's
    4300-digit limit), and one of hundreds overflows every float conversion a page makes of it."""
    if len(text.lstrip("-")) > NUMBER_MAX_DIGITS:
        raise _TooBig(f"holds a number of {len(text)} digits, more than a run file ever does")
    return int(text)


def _real(text: str) -> float:
    """A JSON number with a fraction or exponent; one beyond a float's range (1e400) is no number of ours
    (the store writes a diverged loss as NaN or Infinity, which stay readable)."""
    value = float(text)
    if math.isinf(value):
        raise _TooBig(f"holds the number {text[:40]}, beyond what a float holds")
    return value


_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}  # fmt: skip


def _too_deep(text: str) -> bool:
    """True when `[` and `{` nest more than MAX_DEPTH levels, brackets inside strings aside."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # the common case, counted in C
        return False
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def parse_row(line: bytes) -> dict | None:
    """One metrics.jsonl line as a row, or None when it is not one (cut short, damaged, not an object)."""
    if len(line) > LINE_MAX_BYTES:
        return None
    try:
        row = parse_object(line)
    except DamagedRunFile:
        return None
    return row if _numbers_are_numbers(row) else None


# Fields the pages do arithmetic or formatting on: a row where one of them is not a number is skipped.
_NUMERIC = ("epoch", "step", "loss", "samples_per_s", "train_loss", "train_acc", "test_loss", "test_acc",
            "seconds", "time")  # fmt: skip


def _numbers_are_numbers(row: dict) -> bool:
    if not isinstance(row.get("kind", ""), str):
        return False
    return all(row.get(k) is None or is_number(row[k]) for k in _NUMERIC)


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_rows(path: Path) -> list[dict]:
    """Every good row of a metrics.jsonl; damaged lines and a partial last line are skipped."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    rows = (parse_row(line) for line in data.splitlines())
    return [row for row in rows if row is not None]


def last_row(path: Path, window: int = 16_384) -> dict | None:
    """The last good row of a metrics.jsonl, reading only its tail (cheap enough to call every second)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - window, 0))
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        row = parse_row(line)
        if row is not None:
            return row
    return None
