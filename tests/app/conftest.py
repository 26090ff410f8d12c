"""AppTest fixtures: a private run store so page tests never touch data/runs."""

import pytest

from core import runs


@pytest.fixture
def run_store(tmp_path, monkeypatch):
    store = tmp_path / "runs"
    store.mkdir()
    monkeypatch.setattr(runs, "RUNS_DIR", store)
    return store
