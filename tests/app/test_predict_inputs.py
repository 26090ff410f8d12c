"""The Predict page's other inputs (a drawing, the camera), its link, the run it picks and its hints."""

import base64
import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

import ui.predict.draw
import ui.predict.page
from core import runs
from core.data.fashion import PROJECT_ROOT
from core.model.checkpoint import load_checkpoint
from core.model.predict import predict
from core.runs import store as runstore
from core.training.config import preset
from ui.predict.page import INPUTS, prepare_upload

PAGE = str(PROJECT_ROOT / "pages" / "Predict.py")
GOOD, WEAK = "20260101-000000-good", "20260102-000000-weak"  # WEAK is newer, GOOD more accurate


@pytest.fixture(scope="module")
def two_runs(real_data, tmp_path_factory) -> Path:
    """A good run and a newer, weaker one (a copy whose status says 30%)."""
    store = tmp_path_factory.mktemp("predict_inputs") / "runs"
    config = preset("recommended", epochs=1, limit_batches=100, device="cpu")
    assert runs.train_run(runs.create_run(config, store / GOOD)) == "finished"
    shutil.copytree(store / GOOD, store / WEAK)
    status = json.loads((store / WEAK / "status.json").read_text())
    (store / WEAK / "status.json").write_text(json.dumps(status | {"best_test_acc": 0.3}))
    return store


@pytest.fixture
def store(two_runs, monkeypatch) -> Path:
    monkeypatch.setattr(runstore, "RUNS_DIR", two_runs)
    return two_runs


@pytest.fixture(scope="module")
def model(two_runs) -> torch.nn.Module:
    return load_checkpoint(two_runs / GOOD / runs.CHECKPOINT).model


def _page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def _texts(at: AppTest, kind: str) -> list[str]:
    return [element.value for element in getattr(at, kind)]


def _top1(model, data: bytes) -> str:
    best = predict(model, prepare_upload(data).tensor, 1)[0]
    return f"Top-1: **{best.label}** · {best.prob:.1%}"


def _trouser_sketch() -> np.ndarray:
    """What the canvas sends: 280x280 RGBA, black strokes of two legs on white."""
    image = Image.new("RGBA", (280, 280), "white")
    draw = ImageDraw.Draw(image)
    draw.line([(110, 40), (170, 40)], fill="black", width=20)
    draw.line([(115, 40), (100, 250)], fill="black", width=20)
    draw.line([(165, 40), (180, 250)], fill="black", width=20)
    return np.asarray(image)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def sent(at: AppTest, pixels: np.ndarray, canvas: int = 0) -> AppTest:
    """What the browser's canvas sends after a stroke: its state, the drawing as a PNG data URL."""
    url = "data:image/png;base64," + base64.b64encode(_png(pixels)).decode()
    at.session_state[f"predict_canvas_{canvas}"] = {"drawing": {"raw": {"objects": []}, "data": url}}
    return at.run()


def test_a_drawing_on_the_canvas_is_classified_like_an_upload(store, model, monkeypatch):
    sketch = _trouser_sketch()
    calls = []
    real = ui.predict.draw.canvas
    monkeypatch.setattr(ui.predict.draw, "canvas", lambda **o: calls.append(o) or real(**o))
    at = sent(_page(), sketch)
    assert not at.exception and not at.error
    assert _top1(model, _png(sketch)) in _texts(at, "markdown")
    assert calls[-1]["update_streamlit"] and calls[-1]["stroke_color"] == ui.predict.draw.INK
    at.segmented_control(key="predict_draw_tool").set_value("Eraser").run()
    assert calls[-1]["stroke_color"] == ui.predict.draw.PAPER
    at.slider(key="predict_draw_brush").set_value(30).run()
    assert calls[-1]["stroke_width"] == 30
    drawn_on = calls[-1]["key"]
    at.button(key="predict_draw_clear").click().run()  # a canvas of another key: the component starts blank
    assert calls[-1]["key"] != drawn_on
    assert any(i.startswith("Sketch a piece of clothing") for i in _texts(at, "info"))
    at.run()
    assert calls[-1]["key"] == calls[-2]["key"]  # and stays that canvas until Clear is clicked again


def test_an_empty_canvas_asks_for_a_sketch(store):
    at = sent(_page(), np.full((280, 280, 4), 255, dtype=np.uint8))
    assert not at.exception and not at.error
    assert any(i.startswith("Sketch a piece of clothing") for i in _texts(at, "info"))


def _trouser_photo() -> bytes:
    image = Image.new("RGB", (640, 480), (230, 228, 220))
    ImageDraw.Draw(image).polygon([(270, 40), (370, 40), (400, 450), (330, 450), (320, 150),
                                   (310, 450), (240, 450)], fill=(30, 40, 80))  # fmt: skip
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_camera_photo_is_classified_like_an_upload(store, model, monkeypatch):
    photo = _trouser_photo()
    asked = []

    def camera_input(label, **kw):
        asked.append(label)
        return SimpleNamespace(getvalue=lambda: photo, file_id="cam", name="camera.jpg")

    monkeypatch.setattr(ui.predict.page.st, "camera_input", camera_input)
    at = _page()
    assert not asked  # the camera is asked for only on its own tab
    at = _page(input="camera")
    assert not at.exception and asked
    assert _top1(model, photo) in _texts(at, "markdown")
    assert "File: camera photo" in _texts(at, "text")


def test_the_best_run_is_preselected_not_the_newest(store):
    at = _page()
    assert not at.exception
    assert at.selectbox(key="predict_model").value == f"run:{GOOD}"
    assert at.query_params["run"] == GOOD
    assert at.selectbox(key="predict_model").options[0].startswith("30.0% on test · MLP · run ")


def test_the_link_opens_its_run_tab_and_k_and_is_written_back(store):
    at = _page(run=WEAK, k="5", input="samples")
    assert not at.exception and not [c for c in _texts(at, "caption") if "From the link" in c]
    assert at.selectbox(key="predict_model").value == f"run:{WEAK}"
    assert at.slider(key="predict_k").value == 5
    assert at.session_state[ui.predict.page.TAB_KEY] == INPUTS["samples"]
    at.slider(key="predict_k").set_value(2).run()
    assert (
        at.query_params["k"] == "2"
        and at.query_params["run"] == WEAK
        and at.query_params["input"] == "samples"
    )


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"run": "../../etc/passwd"}, "run '../../etc/passwd' is not a run id"),
        (
            {"run": "20990101-000000-gone"},
            "run 20990101-000000-gone is not a finished run with a model here.",
        ),
        ({"k": "11"}, "k 11 is out of range (1 to 10)."),
        ({"k": "three"}, "k 'three' is not a whole number."),
        ({"input": "microphone"}, "input 'microphone' is not one of upload, draw, camera, samples."),
        ({"input": "x" * 10_000}, "a value of 10,000 characters is too long."),
    ],
)
def test_a_bad_link_value_is_refused_with_a_notice(store, query, reason):
    at = _page(**query)
    assert not at.exception and not at.error
    notices = [c for c in _texts(at, "caption") if "From the link" in c]
    assert len(notices) == 1 and reason in notices[0]
    assert at.selectbox(key="predict_model").value == f"run:{GOOD}" and at.slider(key="predict_k").value == 3


def test_a_tiny_image_and_a_sideways_item_get_a_hint():
    tiny = Image.new("L", (5, 5), 0)
    tiny.putpixel((2, 2), 255)
    assert "this one is 5×5, so the answer means little" in " ".join(prepare_upload(_png_l(tiny)).hints)
    sideways = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(sideways).rectangle([20, 120, 280, 180], fill=0)  # 261 x 61: a trouser lying down
    assert "wider than tall" in " ".join(prepare_upload(_png_l(sideways)).hints)
    upright = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(upright).rectangle([120, 20, 180, 280], fill=0)
    assert prepare_upload(_png_l(upright)).hints == ()


def _png_l(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_top_1_is_worded_for_one_class(store, monkeypatch):
    at = _page(k="1", input="samples")
    titles = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert titles and all("The most likely class" in spec for spec in titles)
