"""The real training worker, paused inside its Nth checkpoint save so a test can SIGKILL it right there.

    python -m tests.unit.kill_driver RUN_DIR MOMENT SAVE MARKER

MOMENT is where save_checkpoint (sidecar first, then weights; each a temp file and an os.replace) stops:
  sidecar-temp      model.json's temp file is written, not yet renamed: the old pair is untouched
  sidecar-replaced  the new model.json is in place, model.pth's temp file not yet created
  weights-temp      model.pth's temp file is written, not yet renamed: the new sidecar is beside old weights
On reaching it the worker writes MARKER and sleeps. The patch lives in this process only: production code
has no test hooks.
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
    """Patch os.replace (what core.fsutil renames with) to hold at `moment` of checkpoint save `save`."""
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


def main(argv: list[str]) -> int:
    run_dir, moment, save, marker = argv
    if moment not in MOMENTS:
        sys.exit(f"kill_driver: MOMENT must be one of {MOMENTS}")
    pause_in_save(moment, int(save), Path(marker))
    from core.cli import main as cli_main

    return cli_main(["worker", run_dir])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
