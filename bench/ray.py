"""Runs on a Ray cluster against runs on this machine, on a real cluster of two nodes started here
(ray.cluster_utils.Cluster: a head and a second node, 1 CPU each unless told).

1. Start to first metrics row: core.runs.start as the dashboard calls it, with the store's spare worker
   warm (as the sidebar keeps it), on this machine and through Ray; `--trials` each, alternating.
2. Four runs queued at once (runs.start(wait=True), as four learners' Start): the fair queue hands them to
   the cluster as its places free; where each ran, when, and the wall time.
Prints JSON. Needs `ray` (requirements-test.txt)."""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from core import runs
from core.data.fashion import prepare
from core.runs import cluster, spare
from core.training.config import TrainConfig

WARM_S = 6.0  # the spare's warm-up (PyTorch, the dataset; with RAY_ADDRESS, Ray and the cluster): ~3 s here


def _first_row_s(root: Path, config: TrainConfig) -> float:
    runs.prepare_worker(root)
    deadline = time.monotonic() + 60
    while spare.ready_pid(root) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(WARM_S)  # the spare listens at once, then warms up while the user picks settings
    t0 = time.monotonic()
    run_id = runs.start(config, runs_dir=root)
    metrics = root / run_id / "metrics.jsonl"
    while not (metrics.is_file() and metrics.stat().st_size):
        if not runs.get_run(run_id, root).active:
            raise SystemExit(f"run {run_id} ended before its first row: {runs.get_run(run_id, root).error}")
        time.sleep(0.01)
    seconds = time.monotonic() - t0
    runs.wait(run_id, root, timeout=300)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs of each of the two nodes")
    parser.add_argument("--batches", type=int, default=100, help="batches per epoch of each queued run")
    args = parser.parse_args()
    prepare()
    from ray.cluster_utils import Cluster

    made = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus})
    made.add_node(num_cpus=args.cpus, resources={"second": 1})
    made.wait_for_nodes()
    names = {node.node_id: name for node, name in zip(made.list_all_nodes(), ("head", "second"), strict=True)}
    quick = TrainConfig(epochs=1, limit_batches=20, log_every=1, device="cpu")
    result = {"cluster": {"nodes": 2, "cpus_each": args.cpus}}
    try:
        with tempfile.TemporaryDirectory(prefix="bench_ray_") as folder:
            root = Path(folder)
            local, remote = [], []
            for _ in range(args.trials):
                os.environ.pop(cluster.ADDRESS_ENV, None)
                local.append(_first_row_s(root / "local", quick))
                os.environ[cluster.ADDRESS_ENV] = made.address
                remote.append(_first_row_s(root / "ray", quick))
            result["start_to_first_row_s"] = {
                "local": [round(s, 2) for s in local],
                "ray": [round(s, 2) for s in remote],
                "median_extra_s": round(statistics.median(remote) - statistics.median(local), 2),
            }

            # Four runs at once through the queue: the cluster's places (one per CPU) take them in turn.
            store = root / "four"
            config = TrainConfig(epochs=1, limit_batches=args.batches, log_every=10, device="cpu")
            t0, origin = time.monotonic(), time.time()
            ids = [runs.start(config, runs_dir=store, wait=True, owner=f"learner{i}") for i in range(4)]
            done = [runs.wait(run_id, store, timeout=900) for run_id in ids]
            wall = time.monotonic() - t0
            rows = []
            for run in done:
                status = runs.read_status(run.dir)
                metrics = runs.read_metrics(run.id, store)
                rows.append({
                    "run": run.id, "status": run.status,
                    "node": names.get((status.get("node") or {}).get("id"), "?"),
                    "first_row_at_s": round(metrics[0]["time"] - origin, 1),
                    "last_row_at_s": round(metrics[-1]["time"] - origin, 1),
                })  # fmt: skip
            result["four_runs"] = {"wall_s": round(wall, 1), "runs": rows}
    finally:
        os.environ.pop(cluster.ADDRESS_ENV, None)
        made.shutdown()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
