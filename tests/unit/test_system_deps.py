"""The set-up's decision about Debian packages (scripts/system_deps.py), without touching the system."""

import pytest

from scripts import system_deps
from scripts.system_deps import Need, plan


def test_nothing_missing_needs_nothing():
    assert plan([], apt=True, root=False, sudo=False) == system_deps.Plan()


def test_root_with_apt_updates_then_installs():
    steps = plan(["dataset-fashion-mnist", "chromium"], apt=True, root=True, sudo=False)
    assert steps.advice == ""
    assert steps.commands[0] == ["apt-get", "update", "-q"]
    assert steps.commands[1][:2] == ["apt-get", "install"]
    assert steps.commands[1][-2:] == ["dataset-fashion-mnist", "chromium"]


def test_passwordless_sudo_installs_through_sudo():
    steps = plan(["chromium"], apt=True, root=False, sudo=True)
    assert all(command[:2] == ["sudo", "-n"] for command in steps.commands)
    assert steps.commands[-1][-1] == "chromium"


def test_without_root_or_sudo_it_gives_the_exact_command():
    steps = plan(["chromium"], apt=True, root=False, sudo=False)
    assert steps.commands == []
    assert steps.advice == "run `sudo apt-get install -y chromium`"


def test_without_apt_it_names_the_package():
    steps = plan(["chromium"], apt=False, root=True, sudo=False)
    assert steps.commands == [] and "chromium" in steps.advice and "apt-get" not in steps.advice


@pytest.fixture
def machine(monkeypatch):
    """A pretend machine: which packages are present, and every command that would have run."""
    state = {"present": set(), "ran": [], "root": True, "apt": True, "installs": True}
    needs = {
        "dataset": Need("dataset-fashion-mnist", "the data", lambda: "dataset" in state["present"], False),
        "chromium": Need("chromium", "Chromium", lambda: "chromium" in state["present"], True),
    }
    monkeypatch.setattr(system_deps, "NEEDS", needs)
    monkeypatch.setattr(system_deps.os, "geteuid", lambda: 0 if state["root"] else 1000)
    monkeypatch.setattr(system_deps.shutil, "which", lambda cmd: f"/usr/bin/{cmd}" if state["apt"] else None)
    monkeypatch.setattr(system_deps, "_can_sudo", lambda: False)

    def run(command, **_kwargs):
        state["ran"].append(command)
        if "install" in command and state["installs"]:
            state["present"].update({"dataset" if "dataset-fashion-mnist" in command else "chromium"})
        return type("Done", (), {"returncode": 0 if state["installs"] else 100})()

    monkeypatch.setattr(system_deps.subprocess, "run", run)
    return state


def test_present_packages_are_left_alone(machine, capsys):
    machine["present"].update({"dataset", "chromium"})
    assert system_deps.main(["dataset", "chromium"]) == 0
    assert machine["ran"] == [] and capsys.readouterr().out == ""


def test_absent_with_root_installs_only_what_is_missing(machine):
    machine["present"].add("dataset")
    assert system_deps.main(["dataset", "chromium"]) == 0
    assert machine["ran"][-1][-1] == "chromium"
    assert not any("dataset-fashion-mnist" in command for command in machine["ran"])


def test_absent_without_root_stops_for_chromium_in_one_line(machine, capsys):
    machine["root"] = False
    assert system_deps.main(["chromium"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: Chromium is missing: run `sudo apt-get install -y chromium`, then run this command again."
    ]
    assert machine["ran"] == []


def test_absent_dataset_without_root_leaves_the_download_to_try(machine, capsys):
    machine["root"] = False
    assert system_deps.main(["dataset"]) == 0
    out = capsys.readouterr().out
    assert "sudo apt-get install -y dataset-fashion-mnist" in out and "download" in out


def test_a_failed_install_of_chromium_stops_with_the_command(machine, capsys):
    machine["installs"] = False
    assert system_deps.main(["chromium"]) == 1
    assert "sudo apt-get install -y chromium" in capsys.readouterr().err


def test_unknown_need_is_a_usage_error():
    assert system_deps.main(["nonsense"]) == 2
