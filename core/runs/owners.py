"""Who may change a run: the owner recorded when it started (a learner on a shared server, ui.learners),
checked before a Stop, a new learning rate, a name or a cancel."""

from pathlib import Path

from core.base.errors import RunError
from core.base.fsutil import atomic_write_json
from core.runs.store import LABEL_FILE, NAME_MAX, NOTE_MAX, _reason, read_status, run_dir


def set_label(
    run_id: str, name: str, note: str, runs_dir: Path | None = None, *, by: str | None = None
) -> None:
    """Give a run a name and a note (label.json, written atomically); RunError if there is no such run, or
    `by` (an owner: check_owner) is not the run's."""
    directory = run_dir(run_id, runs_dir)
    if not (directory / "config.json").is_file():
        raise RunError(f"there is no run {run_id!r}")
    check_owner(directory, by, "rename")
    label = {"name": name.strip()[:NAME_MAX], "note": note.strip()[:NOTE_MAX]}
    try:
        atomic_write_json(directory / LABEL_FILE, label, make_parents=False)
    except OSError as exc:
        raise RunError(f"could not save the name of run {run_id}: {_reason(exc)}") from None


def check_owner(directory: Path, by: str | None, doing: str) -> None:
    """RunError unless `by` owns the run in `directory`. by None: no check (this machine's user, the
    command line, a teacher); else the owner id of whoever asks (a hash: ui.learners), compared with the
    one the run recorded when it was started. A run nobody owns is only the teacher's to change."""
    if by is None:
        return
    status = read_status(directory)
    if status.get("owner", "") != by:
        whose = f"{status['owner_name']}'s" if status.get("owner_name") else "not yours"
        raise RunError(f"run {directory.name} is {whose}: only they, or the teacher, can {doing} it")
