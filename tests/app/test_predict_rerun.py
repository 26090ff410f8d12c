"""Predict's photos across reruns: each photo is asked about once per model, and a session's photos are
capped. Counters wrap the real functions (core.model.predict.predict, core.model.attribution.attribute)."""

import io
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageOps
from streamlit.testing.v1 import AppTest

import ui.predict.answers
from core.data.fashion import PROJECT_ROOT, load_split
from core.model.networks import NeuralNetwork
from tests.app.conftest import make_trained_store
from ui.predict.page import MAX_PHOTOS, too_many_photos

PAGE = str(PROJECT_ROOT / "pages" / "Predict.py")
RUN_ID = "20260101-000000-rerun"
PHOTOS = 3
METHODS = 3  # input gradient, Integrated Gradients, Occlusion


@pytest.fixture(scope="module")
def trained_store(real_data, tmp_path_factory) -> Path:
    return make_trained_store(tmp_path_factory, "rerun", RUN_ID)


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """How often the page asked a model for a ranking ("predict") and for a map ("attribute")."""
    counted = Counter()

    def counting(name, real):
        def wrapper(*args, **kwargs):
            counted[name] += 1
            return real(*args, **kwargs)

        return wrapper

    for name in ("predict", "attribute", "prepare"):
        monkeypatch.setattr(ui.predict.answers, name, counting(name, getattr(ui.predict.answers, name)))
    return counted


def _photo(index: int) -> bytes:
    """Test image `index` as a small photo on a light background."""
    images, _labels = load_split("test")
    buffer = io.BytesIO()
    ImageOps.invert(Image.fromarray(images[index].numpy())).resize((84, 84)).save(buffer, "PNG")
    return buffer.getvalue()


def _photos(count: int, start: int = 0) -> list[tuple[str, bytes, str]]:
    return [(f"photo{i}.png", _photo(i), "image/png") for i in range(start, start + count)]


def _explained_page(files) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.toggle(key="predict_explain").set_value(True)
    at.file_uploader(key="predict_images").set_value(files)
    return at.run()


def _top1_lines(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("Top-1: **")]


def test_a_rerun_a_new_k_or_the_maps_switched_back_on_ask_the_model_nothing_again(store, calls):
    at = _explained_page(_photos(PHOTOS))
    assert not at.exception and not at.error
    asked = PHOTOS + 1  # and the test-set sample on its tab
    assert calls == {"prepare": PHOTOS, "predict": asked, "attribute": asked * METHODS}
    first = _top1_lines(at)

    at.run()
    at.slider(key="predict_k").set_value(7).run()
    at.toggle(key="predict_explain").set_value(False).run()
    at.toggle(key="predict_explain").set_value(True).run()

    assert not at.exception
    assert calls == {"prepare": PHOTOS, "predict": asked, "attribute": asked * METHODS}
    assert _top1_lines(at) == first
    specs = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert len(specs) == PHOTOS + 1 and all("Top-7 classes" in spec for spec in specs)  # the new k shows


def test_the_same_photo_under_another_name_is_not_decoded_again(store, calls):
    at = _explained_page(_photos(1))
    renamed = [("again.png", _photos(1)[0][1], "image/png")]
    at.file_uploader(key="predict_images").set_value(renamed)
    at.run()
    assert not at.exception
    assert calls["prepare"] == 1 and calls["predict"] == 2  # the photo and the test-set sample


def test_another_model_is_asked_afresh(store, calls):
    at = _explained_page(_photos(1))
    before = calls["predict"]
    buffer = io.BytesIO()
    torch.manual_seed(0)
    torch.save(NeuralNetwork().state_dict(), buffer)  # the tutorial's save: other weights, another sha256
    at.file_uploader(key="predict_model_file").set_value(
        ("model.pth", buffer.getvalue(), "application/octet-stream")
    )
    at.run()
    assert not at.exception
    assert at.selectbox(key="predict_model").value.startswith("upload:")
    assert calls["predict"] == before + 2 and calls["prepare"] == 1  # the same photo, a new model's answer


def test_more_photos_than_the_cap_are_refused_in_words_and_never_read(store, calls):
    at = _explained_page(_photos(MAX_PHOTOS + 2))
    assert not at.exception
    assert [e.value for e in at.error] == [too_many_photos(MAX_PHOTOS + 2)]
    assert "the last 2 were not read" in at.error[0].value
    assert len(_top1_lines(at)) == MAX_PHOTOS
    assert calls["prepare"] == MAX_PHOTOS and calls["predict"] == MAX_PHOTOS + 1
    assert list(at.dataframe[0].value["File"]) == [f"photo{i}.png" for i in range(MAX_PHOTOS)]
