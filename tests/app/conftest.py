"""AppTest fixtures: a private run store so page tests never touch data/runs."""

import re
from pathlib import Path

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from core import runs
from core.runs import store as runstore
from core.training.config import preset


@pytest.fixture(autouse=True)
def no_spare_workers(monkeypatch):
    """Page tests start no real runs: no spare worker (core.runs.spare) warming up for each of them."""
    monkeypatch.setenv("STUDIO_SPARE_WORKER", "0")


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """The bytes of every file a download button on the page offers, by file name."""
    offered = {}
    real = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        offered[filename] = path_or_data.encode() if isinstance(path_or_data, str) else path_or_data
        return real(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return offered


@pytest.fixture
def run_store(tmp_path, monkeypatch):
    store = tmp_path / "runs"
    store.mkdir()
    monkeypatch.setattr(runstore, "RUNS_DIR", store)
    return store


def make_trained_store(tmp_path_factory, name: str, run_id: str, **overrides) -> Path:
    """A run store holding one finished run `run_id`: the recommended preset on 100 batches, trained
    in-process (no worker). Page tests that need a real model build theirs with this."""
    store = tmp_path_factory.mktemp(name) / "runs"
    config = preset("recommended", epochs=1, limit_batches=100, device="cpu", **overrides)
    directory = runs.create_run(config, store / run_id)
    assert runs.train_run(directory) == "finished"
    return store


@pytest.fixture
def store(trained_store, monkeypatch) -> Path:
    """The module's `trained_store` as the pages' run store."""
    monkeypatch.setattr(runstore, "RUNS_DIR", trained_store)
    return trained_store


def shown(markdown: str) -> str:
    """What a reader sees of Markdown the page escaped (ui.text.escape_markdown): the text without its
    backslashes and zero-width spaces."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200b", "")


def answers_shown(at):
    """Turn "Predict before each answer" off, as a reader who does not want the game does in the sidebar, so
    the page shows its answers at once. Tests of the page's numbers use it; test_moments.py asks."""
    from ui.learn import moment

    at.session_state[moment.ON] = False
    return at
