"""A class on one server's run queue: N learners each start a capped one-epoch run on the CPU at once (and
one of them two more), through core.runs.start(wait=True) as the Train page does. Checks that every run
finishes, none is lost or started twice, and that they started in the fair order; prints JSON with the
wall time, the dispatcher's CPU time and the queue's overhead per run (a place freed -> the next run's
worker started: from a run's last logged row to the next run's start, so its checkpoint and exit count)."""

import argparse
import contextlib
import itertools
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from core import runs
from core.data.fashion import prepare
from core.runs import queue
from core.training.config import TrainConfig


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _dispatcher_pid(root: Path) -> int | None:
    """The pid of the store's dispatcher (core.runs.dispatch), found by its command line."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"core.runs.dispatch" in cmdline and str(root).encode() in cmdline:
                return int(entry.name)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--batches", type=int, default=10, help="training batches per run (one epoch)")
    args = parser.parse_args()
    prepare()
    config = TrainConfig(epochs=1, limit_batches=args.batches, device="cpu", log_every=5)
    with tempfile.TemporaryDirectory(prefix="classroom_") as folder:
        root = Path(folder)
        started = time.monotonic()
        asked: list[tuple[str, str]] = []  # (owner, run id), in the order the starts returned
        lock = threading.Lock()

        def learner(owner: str, count: int) -> None:
            for _ in range(count):
                run_id = runs.start(config, runs_dir=root, owner=owner, wait=True)
                with lock:
                    asked.append((owner, run_id))

        # learner-00 queues three at once, before anyone else: the fair rule must not let them go first
        learner("learner-00", 3)
        threads = [
            threading.Thread(target=learner, args=(f"learner-{i:02d}", 1)) for i in range(1, args.learners)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        dispatcher = _dispatcher_pid(root)
        dispatcher_cpu = 0.0
        while any(r.active for r in runs.list_runs(root)):
            if dispatcher is not None:
                with contextlib.suppress(OSError):  # it ended: its last reading stands
                    dispatcher_cpu = _cpu_seconds(dispatcher)
            time.sleep(0.5)
        wall = time.monotonic() - started
        report = _check(root, asked)
    report |= {"learners": args.learners, "runs": len(asked), "wall_s": round(wall, 1),
               "dispatcher_cpu_s": round(dispatcher_cpu, 2), "batches_per_run": args.batches}  # fmt: skip
    print(json.dumps(report, indent=2))


def _check(root: Path, asked: list[tuple[str, str]]) -> dict:
    statuses = {run_id: runs.read_status(root / run_id) for _, run_id in asked}
    finished = [run_id for run_id, s in statuses.items() if s.get("status") == "finished"]
    starts = sorted(statuses, key=lambda run_id: statuses[run_id]["started"])
    owners = dict((run_id, owner) for owner, run_id in asked)
    # A run trained twice would log its steps twice: each run's steps must go up once, from 1.
    twice = []
    for run_id in statuses:
        steps = [row["step"] for row in runs.read_metrics(run_id, root) if row["kind"] == "batch"]
        if steps != sorted(set(steps)):
            twice.append(run_id)
    # From a run's last logged row to the dispatcher starting the next: checkpoint, exit, dispatch.
    ends = {run_id: runs.read_metrics(run_id, root)[-1]["time"] for run_id in statuses}
    gaps = [statuses[b]["started"] - ends[a] for a, b in itertools.pairwise(starts)]
    first_of_00 = [run_id for run_id in starts if owners[run_id] == "learner-00"]
    return {
        "finished": len(finished),
        "lost": len(asked) - len(finished),
        "trained_twice": len(twice),
        "learner_00_started_at": [starts.index(run_id) + 1 for run_id in first_of_00],
        "fair": starts.index(first_of_00[1]) == len(starts) - 2,  # its 2nd and 3rd after everyone's 1st
        "queue_overhead_s_per_run": round(sum(max(g, 0.0) for g in gaps) / max(len(gaps), 1), 3),
        "waiting_now": len(queue.waiting_runs(root)),
    }


if __name__ == "__main__":
    main()
