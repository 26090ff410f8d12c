"""The Predict page keeps its photos, drawing and camera shot across page switches (until Clear), within
its limits, and says when a photo's crop is unsure."""

import base64
import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

import ui.predict.draw
from core import runs
from core.data.fashion import PROJECT_ROOT, load_split
from core.model.checkpoint import load_checkpoint
from core.model.crop import UNEVEN
from core.model.predict import MAX_IMAGE_BYTES, predict
from tests.app.conftest import make_trained_store
from ui.predict.page import MAX_PHOTOS, prepare_upload

PAGE = str(PROJECT_ROOT / "pages" / "Predict.py")
AWAY = str(PROJECT_ROOT / "pages" / "Tensors.py")
RUN_ID = "20260101-000000-keep"


@pytest.fixture(scope="module")
def trained_store(real_data, tmp_path_factory) -> Path:
    return make_trained_store(tmp_path_factory, "predict_keeps", RUN_ID)


@pytest.fixture(scope="module")
def model(trained_store) -> torch.nn.Module:
    return load_checkpoint(trained_store / RUN_ID / runs.CHECKPOINT).model


def _app() -> AppTest:
    return AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run().switch_page(PAGE).run()


def _away_and_back(at: AppTest) -> AppTest:
    at.switch_page(AWAY).run()
    assert not at.exception
    return at.switch_page(PAGE).run()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _sample(index: int) -> bytes:
    images, _ = load_split("test")
    return _png(Image.fromarray(images[index].numpy()))


def _texts(at: AppTest, kind: str) -> list[str]:
    return [element.value for element in getattr(at, kind)]


def _top1(model, data: bytes) -> str:
    best = predict(model, prepare_upload(data).tensor, 1)[0]
    return f"Top-1: **{best.label}** · {best.prob:.1%}"


def test_dropped_photos_are_still_there_after_another_page_until_clear(store, model):
    at = _app()
    at.file_uploader(key="predict_images").set_value(
        [("boot.png", _sample(0), "image/png"), ("shirt.png", _sample(1), "image/png")]
    ).run()
    assert not at.exception and "File: boot.png" in _texts(at, "text")
    at = _away_and_back(at)
    assert not at.exception and not _texts(at, "error")
    assert at.file_uploader(key="predict_images").value == [], "Streamlit's drop zone itself forgot them"
    assert {"File: boot.png", "File: shirt.png"} <= set(_texts(at, "text"))
    assert _top1(model, _sample(0)) in _texts(at, "markdown")
    assert any("2 photos kept from earlier in this session" in c for c in _texts(at, "caption"))
    at.file_uploader(key="predict_images").set_value(("bag.png", _sample(2), "image/png")).run()
    assert [t for t in _texts(at, "text") if t.startswith("File:")] == [
        "File: boot.png",
        "File: shirt.png",
        "File: bag.png",
    ], "a new drop is added to the kept photos"
    at.button(key="predict_photos_clear").click().run()
    assert not any(t.startswith("File:") for t in _texts(at, "text"))
    assert any(i.startswith("Drop one or more images") for i in _texts(at, "info"))
    at = _away_and_back(at)
    assert not any(t.startswith("File:") for t in _texts(at, "text")), "cleared photos stay forgotten"


def test_a_photo_removed_from_the_drop_zone_is_forgotten(store):
    at = _app()
    uploader = at.file_uploader(key="predict_images")
    uploader.set_value([("boot.png", _sample(0), "image/png"), ("shirt.png", _sample(1), "image/png")]).run()
    at.file_uploader(key="predict_images").set_value(("shirt.png", _sample(1), "image/png")).run()
    assert [t for t in _texts(at, "text") if t.startswith("File:")] == ["File: shirt.png"]


def test_the_kept_photos_hold_the_limits(store):
    at = _app()
    files = [(f"{n}.png", _sample(n), "image/png") for n in range(MAX_PHOTOS + 3)]
    at.file_uploader(key="predict_images").set_value(files).run()
    assert any("were not read" in e for e in _texts(at, "error"))
    at = _away_and_back(at)
    shown = [t for t in _texts(at, "text") if t.startswith("File:")]
    assert shown == [f"File: {n}.png" for n in range(MAX_PHOTOS)]
    kept = at.session_state["predict_photos"]
    assert len(kept) == MAX_PHOTOS and all(len(data) <= MAX_IMAGE_BYTES for _name, data in kept.values())


def test_a_drawing_is_drawn_again_and_classified_after_another_page(store, model, monkeypatch):
    calls = []
    real = ui.predict.draw.canvas
    monkeypatch.setattr(ui.predict.draw, "canvas", lambda **o: calls.append(o) or real(**o))
    image = Image.new("RGBA", (280, 280), "white")
    ImageDraw.Draw(image).line([(140, 30), (140, 250)], fill="black", width=30)
    strokes = {"objects": [{"type": "path", "path": [["M", 140, 30], ["L", 140, 250]]}]}
    url = "data:image/png;base64," + base64.b64encode(_png(image)).decode()
    at = _app()
    at.session_state["predict_canvas_0"] = {"drawing": {"raw": strokes, "data": url}}
    at.run()
    answer = _top1(model, _png(image))
    assert answer in _texts(at, "markdown")
    at = _away_and_back(at)
    assert not at.exception
    assert calls[-1]["initial_drawing"] == strokes, "the canvas starts from the strokes kept"
    assert answer in _texts(at, "markdown")
    at.button(key="predict_draw_clear").click().run()
    assert calls[-1]["initial_drawing"] is None
    assert any(i.startswith("Sketch a piece of clothing") for i in _texts(at, "info"))


def test_a_camera_shot_is_kept_until_cleared(store, model, monkeypatch):
    photo = _sample(3)
    taken = {"photo": SimpleNamespace(getvalue=lambda: photo, file_id="cam", name="camera.jpg")}
    monkeypatch.setattr(ui.predict.draw.st, "camera_input", lambda label, **kw: taken["photo"])
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    at.query_params["input"] = "camera"
    at.switch_page(PAGE).run()
    assert "File: camera photo" in _texts(at, "text")
    taken["photo"] = None  # back from another page the camera widget has no photo
    at = _away_and_back(at)
    assert "File: camera photo" in _texts(at, "text")
    assert _top1(model, photo) in _texts(at, "markdown")
    assert any("The photo you took earlier" in c for c in _texts(at, "caption"))
    at.button(key="predict_camera_clear").click().run()
    assert "File: camera photo" not in _texts(at, "text")


def test_a_banded_photo_with_the_item_at_its_edge_says_the_crop_is_unsure(store):
    image = Image.new("L", (600, 500), 235)
    image.paste(150, (0, 120, 600, 200))  # a darker band across
    ImageDraw.Draw(image).rectangle((250, 60, 350, 500), fill=40)  # reaches the bottom edge
    at = _app()
    at.file_uploader(key="predict_images").set_value(("band.png", _png(image), "image/png")).run()
    assert not at.exception
    assert UNEVEN in _texts(at, "warning")
    clean = Image.new("L", (600, 500), 235)
    ImageDraw.Draw(clean).rectangle((250, 60, 350, 440), fill=40)
    at.file_uploader(key="predict_images").set_value(("plain.png", _png(clean), "image/png")).run()
    assert UNEVEN not in _texts(at, "warning")


def test_the_kept_bytes_are_what_the_page_shows(store):
    data = _sample(5)
    at = _app()
    at.file_uploader(key="predict_images").set_value(("five.png", data, "image/png")).run()
    ((name, kept),) = at.session_state["predict_photos"].values()
    assert name == "five.png" and kept == data
    assert np.asarray(Image.open(io.BytesIO(kept))).shape == (28, 28)
