"""The Predict page given several files built to cost minutes of CPU: one error each, quickly, and the
page keeps working."""

import io
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import runs
from core.data import PROJECT_ROOT, load_split
from core.train import preset
from tests.unit.test_hostile_images import repeated_scan_jpeg

PAGE = str(PROJECT_ROOT / "pages" / "4_Predict.py")
RUN_ID = "20260101-000000-hostile"
COPIES = 4
PAGE_LIMIT_S = 10.0  # the whole rerun with every file; about 1 s here, decoding them all took minutes


@pytest.fixture(scope="module")
def trained_store(real_data, tmp_path_factory) -> Path:
    """A run store holding one finished run, so that the page has a model and shows its uploader."""
    store = tmp_path_factory.mktemp("hostile") / "runs"
    config = preset("recommended", epochs=1, limit_batches=20, device="cpu")
    assert runs.train_run(runs.create_run(config, store / RUN_ID)) == "finished"
    return store


@pytest.fixture
def store(trained_store, monkeypatch) -> Path:
    monkeypatch.setattr(runs, "RUNS_DIR", trained_store)
    return trained_store


def _sample_png() -> bytes:
    images, _labels = load_split("test")
    buffer = io.BytesIO()
    Image.fromarray(images[0].numpy()).save(buffer, "PNG")
    return buffer.getvalue()


def _upload(at: AppTest, files) -> tuple[AppTest, float]:
    at.file_uploader(key="predict_images").set_value(files)
    start = time.perf_counter()
    at.run()
    return at, time.perf_counter() - start


def test_several_repeated_scan_jpegs_get_one_error_each_and_the_page_still_works(store):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    hostile = repeated_scan_jpeg()
    files = [(f"scans{i}.jpg", hostile, "image/jpeg") for i in range(COPIES)]

    at, seconds = _upload(at, [*files, ("sample.png", _sample_png(), "image/png")])

    print(f"\n{COPIES} repeated-scan JPEGs and one sample: the page answered in {seconds:.2f} s")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == COPIES
    assert all(e.startswith("Cannot classify this file: JPEG has over ") for e in errors)
    assert all("\n" not in e for e in errors), "one line each"
    assert seconds < PAGE_LIMIT_S
    assert any(m.value.startswith("Top-1: **") for m in at.markdown), "the good file is still classified"
    table = at.dataframe[0].value
    assert list(table["File"]) == [*(name for name, _data, _type in files), "sample.png"]

    at.slider(key="predict_k").set_value(5).run()  # the page still answers
    assert not at.exception
    assert list(at.dataframe[0].value.columns)[-3:] == ["5th", "Probability (5th)", "Problem"]
