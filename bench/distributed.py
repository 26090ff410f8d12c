"""One run on several processes (DistributedDataParallel, gloo) on this machine's CPU: training samples/s
of the MLP and the CNN in one plain process, as DDP with 1 rank (what DDP itself costs) and as DDP with 2
ranks, each a real run through the project's own commands. Prints a table, then the same figures as JSON.

A run's rate is its steady one, from rank 0's metrics.jsonl: the images of the global batches trained
between the first logged step and the last, over the time between those two rows. Start-up, the first
batch (warm-up) and the test pass fall outside it; they are in the wall time of the whole command, and in
its CPU time (every process it started, all ranks included), which another busy process on the machine
changes less than it changes the rates. The modes take turns within each repeat, so a busy spell falls on
all of them; the table shows the median of the repeats, and the best (the least disturbed run). The ranks
share the cores (threads per rank = cores // ranks): on a machine with few cores this shows what the
mechanism costs, not a speed-up.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from core import runs
from core.base.runfiles import read_rows
from core.data.fashion import PROJECT_ROOT, prepare

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]  # what `torchrun` runs
CORE_TRAIN = ["-m", "core", "train"]

# name: (what it is, ranks, the command before train's own arguments)
MODES: dict[str, tuple[str, int, list[str]]] = {
    "plain": ("one process", 1, [sys.executable, *CORE_TRAIN]),
    "ddp1": ("DDP, 1 rank (torchrun)", 1, [*TORCHRUN, "--nproc-per-node", "1", *CORE_TRAIN]),
    "ddp2": ("DDP, 2 ranks (torchrun)", 2, [*TORCHRUN, "--nproc-per-node", "2", *CORE_TRAIN]),
    "nproc2": ("DDP, 2 ranks (--nproc 2)", 2, [sys.executable, *CORE_TRAIN, "--nproc", "2"]),
}
# Training batches per run: enough that the timed stretch lasts ~10 s or more in one process here.
BATCHES = {"mlp": 600, "cnn": 100}
TRAIN_IMAGES = 60_000


def steady_rate(rows: list[dict], batch_size: int, num_samples: int = TRAIN_IMAGES) -> float:
    """Images per second between the first logged step of the first epoch and its last logged step.

    The first row (step 1) ends the warm-up batch, so the stretch after it is steady training. Every
    global batch holds `batch_size` images but the epoch's last, which holds what is left of
    `num_samples`."""
    logged = [row for row in rows if row.get("kind") == "batch"]
    if logged:
        logged = [row for row in logged if row["epoch"] == logged[0]["epoch"]]
    if len(logged) < 2:
        raise ValueError("fewer than two logged steps in the first epoch: train more batches")
    first, last = logged[0], logged[-1]
    seconds = last["time"] - first["time"]
    if seconds <= 0:
        raise ValueError("the logged steps are not in time order")
    trained = min(last["step"] * batch_size, num_samples) - first["step"] * batch_size
    return trained / seconds


def one_run(
    mode: str, model: str, batches: int | None, batch_size: int, folder: Path, device: str = "cpu"
) -> dict:
    """Train one epoch in `mode` (its first `batches` batches, or all): the steady samples/s, the
    command's wall and CPU time, and the epoch's row (scripts/gpu_check.py runs it on CUDA too)."""
    _label, ranks, command = MODES[mode]
    run_dir = folder / f"{model}-{mode}-{time.monotonic_ns()}"
    args = [*command, "--model", model, "--epochs", "1", "--batch-size", str(batch_size),
            "--device", device, "--run-dir", str(run_dir)]  # fmt: skip
    args += ["--limit-batches", str(batches)] if batches is not None else []
    env = {**os.environ, "STUDIO_RUNS_DIR": str(folder)}  # its own device locks, none in the user's store
    cpu_before, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu_before
    status = runs.read_status(run_dir)
    if done.returncode != 0 or status.get("status") != "finished":
        raise RuntimeError(
            f"{' '.join(args)} exited with {done.returncode} ({status.get('status')}):\n"
            f"{(done.stdout + done.stderr)[-3000:]}"
        )
    processes = runs.read_config(run_dir).processes
    if processes != ranks:
        raise RuntimeError(f"{mode}: the run recorded {processes} processes, not {ranks}")
    rows = read_rows(run_dir / "metrics.jsonl")
    epoch = next((row for row in rows if row.get("kind") == "epoch"), {})
    return {"samples_per_s": steady_rate(rows, batch_size), "wall_s": wall, "cpu_s": cpu, "epoch": epoch}


def _children_cpu() -> float:
    """CPU seconds of the child processes that ended so far, theirs and their own children's (the ranks)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(models: list[str], modes: list[str], repeats: int, batch_size: int, batches: dict) -> list[dict]:
    runs: dict[tuple[str, str], list[dict]] = {(m, mode): [] for m in models for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            turn = modes[repeat % len(modes) :] + modes[: repeat % len(modes)]  # a different first each time
            for model in models:
                for mode in turn:
                    got = one_run(mode, model, batches[model], batch_size, Path(tmp))
                    runs[model, mode].append(got)
                    print(
                        f"  {model} {mode}: {got['samples_per_s']:.0f} samples/s, {got['wall_s']:.1f} s, "
                        f"{got['cpu_s']:.1f} CPU s",
                        file=sys.stderr,
                    )
    results = []
    for model in models:
        plain = None
        for mode in modes:
            rates = [r["samples_per_s"] for r in runs[model, mode]]
            rate = statistics.median(rates)
            plain = rate if mode == "plain" else plain
            label, ranks, _command = MODES[mode]
            results.append({
                "model": model,
                "mode": mode,
                "what": label,
                "ranks": ranks,
                "threads_per_rank": max(1, (os.cpu_count() or 1) // ranks),
                "batches": batches[model],
                "samples_per_s": round(rate),
                "samples_per_s_best": round(max(rates)),  # the least disturbed run, on a busy machine
                "samples_per_s_runs": [round(r) for r in rates],
                "vs_plain": round(rate / plain, 2) if plain else None,
                "wall_s": round(statistics.median(r["wall_s"] for r in runs[model, mode]), 1),
                "cpu_s": round(statistics.median(r["cpu_s"] for r in runs[model, mode]), 1),
            })  # fmt: skip
    return results


def table(results: list[dict]) -> str:
    head = (
        f"{'model':<5}  {'mode':<26}  {'samples/s':>9}  {'vs plain':>8}  {'best':>6}  {'wall s':>6}  "
        f"{'CPU s':>6}  runs (samples/s)"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        runs = " ".join(str(x) for x in r["samples_per_s_runs"])
        ratio = f"{r['vs_plain']:.2f}" if r["vs_plain"] is not None else "-"
        lines.append(
            f"{r['model']:<5}  {r['what']:<26}  {r['samples_per_s']:>9}  {ratio:>8}  "
            f"{r['samples_per_s_best']:>6}  {r['wall_s']:>6}  {r['cpu_s']:>6}  {runs}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=sorted(BATCHES), default=["mlp", "cnn"])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each model and mode; the median")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch (the tutorial's 64)")
    parser.add_argument("--mlp-batches", type=int, default=BATCHES["mlp"])
    parser.add_argument("--cnn-batches", type=int, default=BATCHES["cnn"])
    args = parser.parse_args()
    batches = {"mlp": args.mlp_batches, "cnn": args.cnn_batches}
    prepare(allow_download=False)
    load_before = os.getloadavg()[0]
    results = measure(args.models, args.modes, args.repeats, args.batch_size, batches)
    print(table(results))
    print(json.dumps({
        "benchmark": "training samples/s, one process vs DistributedDataParallel (gloo) on the CPU",
        "machine": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],  # before, after
        "results": results,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
