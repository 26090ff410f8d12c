"""The real training worker, paused inside its Nth checkpoint save so a test can SIGKILL it right there.

    python -m tests.unit.kill_driver RUN_DIR MOMENT SAVE MARKER [launcher]

MOMENT is where save_checkpoint (sidecar first, then weights; each a temp file and an os.replace) stops:
  sidecar-temp      model.json's temp file is written, not yet renamed: the old pair is untouched
  sidecar-replaced  the new model.json is in place, model.pth's temp file not yet created
  weights-temp      model.pth's temp file is written, not yet renamed: the new sidecar is beside old weights
On reaching it the worker writes MARKER (holding its pid) and sleeps. The patch lives in this process only:
production code has no test hooks.

With `launcher`, RUN_DIR is a run of several processes and this process is its launcher, as the
dashboard's worker is (core.runs.launcher.launch, unpatched); torch's agent starts each rank as
`python -m tests.unit.kill_driver RUN_DIR MOMENT SAVE MARKER rank WORKER_ARGS...`, which is the real
rank (`python -m core worker RUN_DIR WORKER_ARGS...`) with the patch, so rank 0, the one that saves,
holds in its save.
"""

import os
import sys
import time
from pathlib import Path

MOMENTS = ("sidecar-temp", "sidecar-replaced", "weights-temp")


def _hold(marker: Path) -> None:
    marker.write_text(str(os.getpid()))
    time.sleep(600)  # the test kills us long before this ends
    sys.exit("kill_driver: nobody killed the paused worker")


def pause_in_save(moment: str, save: int, marker: Path) -> None:
    """Patch os.replace (what core.base.fsutil renames with) to hold at `moment` of checkpoint save `save`."""
    real_replace = os.replace
    target = "model.pth" if moment == "weights-temp" else "model.json"
    renames = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal renames
        if Path(dst).name == target:
            renames += 1
        due = Path(dst).name == target and renames == save
        if due and moment != "sidecar-replaced":
            _hold(marker)
        real_replace(src, dst, *args, **kwargs)
        if due:
            _hold(marker)

    os.replace = replace


def start_ranks_here(run_dir: str, moment: str, save: int, marker: Path) -> None:
    """Patch torch's elastic_launch, in this (launcher) process, to start this module's `rank` mode."""
    from torch.distributed.launcher import api

    real_launch = api.elastic_launch

    def elastic_launch(config, entrypoint):
        start = real_launch(config, entrypoint)

        def run(*args):
            worker = ("-m", "core", "worker", run_dir)  # what core.runs.launcher.launch starts
            if args[: len(worker)] != worker:
                sys.exit(f"kill_driver: the launcher started {args}, not {worker}")
            driver = ("-m", "tests.unit.kill_driver", run_dir, moment, str(save), str(marker), "rank")
            return start(*driver, *args[len(worker) :])

        return run

    api.elastic_launch = elastic_launch


def main(argv: list[str]) -> int:
    run_dir, moment, save, marker, *mode = argv
    if moment not in MOMENTS:
        sys.exit(f"kill_driver: MOMENT must be one of {MOMENTS}")
    from core.cli import main as cli_main

    if mode[:1] == ["launcher"]:
        start_ranks_here(run_dir, moment, int(save), Path(marker))
        return cli_main(["worker", run_dir])
    pause_in_save(moment, int(save), Path(marker))
    return cli_main(["worker", run_dir, *mode[1:]])  # a rank: the worker arguments its launcher gave


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
