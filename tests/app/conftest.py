"""AppTest fixtures: a private run store so page tests never touch data/runs."""

import pytest

from core import runs


@pytest.fixture(autouse=True)
def no_spare_workers(monkeypatch):
    """Page tests start no real runs: no spare worker (core.spare) warming up for each of them."""
    monkeypatch.setenv("STUDIO_SPARE_WORKER", "0")


@pytest.fixture
def run_store(tmp_path, monkeypatch):
    store = tmp_path / "runs"
    store.mkdir()
    monkeypatch.setattr(runs, "RUNS_DIR", store)
    return store
