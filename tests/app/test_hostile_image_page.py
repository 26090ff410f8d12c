"""The Predict page given several files built to cost minutes of CPU, and a canvas that sends a PNG bomb
or no image at all: one error each, in words, quickly, and the page keeps working."""

import base64
import io
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import PROJECT_ROOT, load_split
from core.runs import store as runstore
from core.training.config import preset
from tests.unit.test_hostile_images import png_bomb, repeated_scan_jpeg

PAGE = str(PROJECT_ROOT / "pages" / "Predict.py")
RUN_ID = "20260101-000000-hostile"
COPIES = 4
PAGE_LIMIT_S = 10.0  # the whole rerun with every file; about 1 s here, decoding them all took minutes
CANVAS_CPU_LIMIT_S = 1.0  # the page's rerun with the bomb: 0.02 s here; the package decoding it took 7 s
CANVAS_PEAK_LIMIT_MB = 200  # memory above what the process held: 0 MB here; decoding it took +1.9 GB


@pytest.fixture(scope="module")
def trained_store(real_data, tmp_path_factory) -> Path:
    """A run store holding one finished run, so that the page has a model and shows its uploader."""
    store = tmp_path_factory.mktemp("hostile") / "runs"
    config = preset("recommended", epochs=1, limit_batches=20, device="cpu")
    assert runs.train_run(runs.create_run(config, store / RUN_ID)) == "finished"
    return store


@pytest.fixture
def store(trained_store, monkeypatch) -> Path:
    monkeypatch.setattr(runstore, "RUNS_DIR", trained_store)
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


def _sent(at: AppTest, drawing) -> AppTest:
    """A forged canvas message: the component's state holding `drawing` instead of the canvas's PNG."""
    at.session_state["predict_canvas_0"] = {"drawing": drawing}
    return at.run()


def _peak_mb() -> float:
    with open("/proc/self/status") as status:  # VmHWM: this process's peak resident memory
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures memory through /proc")
def test_a_png_bomb_sent_as_the_drawing_is_refused_from_its_header(store):
    url = "data:image/png;base64," + base64.b64encode(png_bomb(13_000)).decode()  # 0.66 MB, 676 MB of pixels
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM back to what is resident now
    peak, cpu = _peak_mb(), time.process_time()
    at = _sent(at, {"raw": {"objects": []}, "data": url})
    cpu, rise = time.process_time() - cpu, _peak_mb() - peak
    print(f"\nthe page refused the canvas bomb in {cpu:.2f} s of CPU, +{rise:.0f} MB at its peak")
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Cannot classify this drawing: image too large: 13000 x 13000 pixels; the limit is 1.3 megapixels "
        "and 12,000 pixels a side"
    ]
    assert cpu < CANVAS_CPU_LIMIT_S and rise < CANVAS_PEAK_LIMIT_MB


@pytest.mark.parametrize(
    ("drawing", "error"),
    [
        (
            {"data": "data:text/plain;base64," + base64.b64encode(b"no image").decode()},
            "the drawing's data URL does not hold an image; clear the canvas and draw again",
        ),
        ({"data": "data:image/png;base64,%%%"}, "the drawing's data is not valid base64"),
        ({"data": "javascript:alert(1)"}, "the drawing did not arrive as a base64 data: URL"),
        ({"data": "data:image/png;base64," + base64.b64encode(b"GIF89a").decode()}, "not an image this app"),
        ({"data": 42}, "the drawing arrived as int, not as an image"),
        ("not a mapping", "the canvas sent something that is not a drawing"),
        (
            {"data": "data:image/png;base64," + "A" * 3_000_000},
            "image is too large (2.1 MB; the limit is 2.0 MB)",
        ),
    ],
)
def test_a_canvas_value_that_is_no_drawing_is_refused_in_words(store, drawing, error):
    at = _sent(AppTest.from_file(PAGE, default_timeout=120).run(), drawing)
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith(f"Cannot classify this drawing: {error}")
    at.session_state["predict_canvas_0"] = {"drawing": {"raw": {"objects": []}, "data": None}}
    at.run()  # the canvas cleared: the page asks for a sketch again
    assert not at.exception and not at.error
    assert any(i.value.startswith("Sketch a piece of clothing") for i in at.info)
