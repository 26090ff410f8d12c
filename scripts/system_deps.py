"""The system packages `make run` and `make test` need: installed when missing and allowed, else one line.

Run with the machine's python3 before the venv exists (standard library only):

    python3 -m scripts.system_deps dataset            # make run: FashionMNIST
    python3 -m scripts.system_deps dataset chromium   # make test: also Chromium for the browser tests

FashionMNIST keeps core.data.fashion's order: the project's copy, Debian's `dataset-fashion-mnist`, then
torchvision's download. So when the package cannot be installed here, this says so and leaves the
download to `python -m core data prepare`, which stops with the command to run if that fails too.
Chromium has no such fallback: without it `make test` stops here with the command to run.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.base.paths import SYSTEM_PACKAGE, has_project_copy, has_system_copy

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}  # no prompts from package scripts


@dataclass(frozen=True)
class Need:
    package: str  # the Debian package that provides it
    what: str  # what it is for, in words
    present: Callable[[], bool]
    required: bool  # without it, stop; otherwise another way may still work


NEEDS = {
    "dataset": Need(
        SYSTEM_PACKAGE,
        "FashionMNIST",
        lambda: has_project_copy() or has_system_copy(),
        required=False,  # torchvision's download is the next source
    ),
    "chromium": Need("chromium", "Chromium for the browser tests", lambda: Path(CHROMIUM).exists(), True),
}


@dataclass(frozen=True)
class Plan:
    commands: list[list[str]] = field(default_factory=list)  # run in order when not empty
    advice: str = ""  # when nothing can be installed here: what the user should run


def plan(packages: Sequence[str], *, apt: bool, root: bool, sudo: bool) -> Plan:
    """What to do about missing Debian `packages`, given what this machine allows."""
    if not packages:
        return Plan()
    names = list(packages)
    if apt and (root or sudo):
        prefix = [] if root else ["sudo", "-n"]
        return Plan(
            commands=[
                [*prefix, "apt-get", "update", "-q"],
                [*prefix, "apt-get", "install", "-y", "-q", *names],  # with recommends: Chromium's fonts
            ]
        )
    if apt:
        return Plan(advice=f"run `sudo apt-get install -y {' '.join(names)}`")
    return Plan(advice=f"install {' and '.join(names)} with this system's package manager")


def _can_sudo() -> bool:
    if shutil.which("sudo") is None:
        return False
    return subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


def _install(steps: Plan) -> bool:
    env = {**os.environ, **APT_ENV}
    for command in steps.commands:
        print("+ " + " ".join(command), flush=True)
        done = subprocess.run(command, env=env)
        # A failed `apt-get update` (offline mirror) may still leave usable package lists.
        if done.returncode != 0 and "install" in command:
            return False
    return True


def main(argv: Sequence[str]) -> int:
    unknown = [name for name in argv if name not in NEEDS]
    if unknown:
        print(f"system_deps: unknown need {unknown[0]!r}; choose from {', '.join(NEEDS)}", file=sys.stderr)
        return 2
    missing = [NEEDS[name] for name in argv if not NEEDS[name].present()]
    if not missing:
        return 0
    steps = plan(
        [need.package for need in missing],
        apt=shutil.which("apt-get") is not None,
        root=os.geteuid() == 0,
        sudo=False if os.geteuid() == 0 else _can_sudo(),
    )
    if steps.commands:
        print(f"Installing {', '.join(need.what for need in missing)} (Debian packages; a minute or two)")
        if _install(steps):
            missing = [need for need in missing if not need.present()]
            steps = plan([need.package for need in missing], apt=True, root=False, sudo=False)
    return _report(missing, steps)


def _report(missing: list[Need], steps: Plan) -> int:
    """One line per thing still missing; exit 1 only if something required is among them."""
    for need in missing:
        advice = steps.advice or f"run `sudo apt-get install -y {need.package}`"
        if need.required:
            print(f"error: {need.what} is missing: {advice}, then run this command again.", file=sys.stderr)
            continue
        print(f"note: no offline copy of {need.what} here ({advice} for one); trying torchvision's download")
    return 1 if any(need.required for need in missing) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
