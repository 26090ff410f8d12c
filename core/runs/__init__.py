"""Runs: the store on disk (store), where a run is (progress), the device places and their locks (places,
locks), the queue and its dispatcher (queue, dispatch), who may change a run (owners), starting and
steering runs from outside (control), what a worker process runs (execute, launcher, worker) and the
spare worker (spare).

The names the pages, the command line and the tests use are gathered here, so `from core import runs`
then `runs.start(...)`, `runs.list_runs()` read as before. Tests that point the store elsewhere patch
`core.runs.store.RUNS_DIR`, where it is read.
"""

from core.runs.control import prepare_worker, set_lr, start, stop, wait
from core.runs.dispatch import ensure_dispatcher
from core.runs.execute import record_failure, record_pid, run_recorded, train_run
from core.runs.launcher import run_worker
from core.runs.locks import LOCK_GRACE_S, device_lock
from core.runs.owners import check_owner, set_label
from core.runs.progress import Progress, progress
from core.runs.queue import Place, cancel, place_in_queue, places_in_queue
from core.runs.store import (
    ACTIVE,
    CHECKPOINT,
    DAMAGED,
    FINAL,
    LABEL_FILE,
    LR_FILE,
    NAME_MAX,
    NOTE_MAX,
    QUEUED_GRACE_S,
    RESULTS,
    STATUSES,
    STOP_FILE,
    RunInfo,
    active_run,
    create_run,
    current_lr,
    device_key,
    device_keys,
    get_run,
    lineage_offset,
    list_races,
    list_runs,
    lr_history,
    new_run_id,
    read_config,
    read_metrics,
    read_results,
    read_status,
    require_run,
    run_dir,
    stop_asked,
    store_problem,
    store_root,
)

__all__ = [
    "ACTIVE", "CHECKPOINT", "DAMAGED", "FINAL", "LABEL_FILE", "LOCK_GRACE_S", "LR_FILE", "NAME_MAX",
    "NOTE_MAX", "QUEUED_GRACE_S", "RESULTS", "STATUSES", "STOP_FILE", "Place", "Progress", "RunInfo",
    "active_run", "cancel", "check_owner", "create_run", "current_lr", "device_key", "device_keys",
    "device_lock", "ensure_dispatcher", "get_run", "lineage_offset", "list_races", "list_runs",
    "lr_history", "new_run_id", "place_in_queue", "places_in_queue", "prepare_worker", "progress",
    "read_config", "read_metrics", "read_results", "read_status", "record_failure", "record_pid",
    "require_run", "run_dir", "run_recorded", "run_worker", "set_label", "set_lr", "start", "stop",
    "stop_asked", "store_problem", "store_root", "train_run", "wait",
]  # fmt: skip
