"""The Predict page: uploads, bad files and checkpoints, test-set samples, and the quick-training offer."""

import io
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

import ui.cache
from core import runs
from core.data.fashion import CLASSES, PROJECT_ROOT, load_split
from core.model.checkpoint import load_checkpoint
from core.model.predict import MAX_IMAGE_BYTES, predict
from core.training.config import preset
from tests.app.conftest import make_trained_store
from ui.predict.page import display_name, escape_markdown, prepare_upload

PAGE = str(PROJECT_ROOT / "pages" / "Predict.py")
RUN_ID = "20260101-000000-pred"


@pytest.fixture(scope="module")
def trained_store(real_data, tmp_path_factory) -> Path:
    return make_trained_store(tmp_path_factory, "predict", RUN_ID)


@pytest.fixture(scope="module")
def model(trained_store) -> torch.nn.Module:
    return load_checkpoint(trained_store / RUN_ID / runs.CHECKPOINT).model


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _page_in_app() -> AppTest:
    """The page reached from app.py: while a run trains, the sidebar links to pages/Train.py, a path
    Streamlit resolves against the entry point, so the page alone as entry point cannot render it."""
    return AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run().switch_page(PAGE).run()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _test_sample_png(index: int) -> tuple[bytes, int]:
    images, labels = load_split("test")
    return _png(Image.fromarray(images[index].numpy())), int(labels[index])


def _photo() -> bytes:
    """A 1600x1200 JPEG of a dark trouser-like shape on a light background, like a phone photo."""
    image = Image.new("RGB", (1600, 1200), (236, 232, 225))
    ImageDraw.Draw(image).polygon([(650, 150), (950, 150), (1000, 1050), (820, 1050), (800, 400),
                                   (780, 1050), (600, 1050)], fill=(40, 50, 90))  # fmt: skip
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _texts(at: AppTest, kind: str) -> list[str]:
    return [element.value for element in getattr(at, kind)]


def _upload(at: AppTest, key: str, files) -> AppTest:
    at.file_uploader(key=key).set_value(files)
    return at.run()


def test_an_uploaded_test_sample_shows_the_models_top1_class_and_probability(store, model):
    at = _page()
    assert not at.exception
    assert at.selectbox(key="predict_model").value == f"run:{RUN_ID}"
    assert any("MLP · 669,706 parameters · test accuracy" in c for c in _texts(at, "caption"))
    data, _label = _test_sample_png(0)
    at = _upload(at, "predict_images", ("boot.png", data, "image/png"))
    assert not at.exception
    best = predict(model, data, 1)[0]
    assert f"Top-1: **{best.label}** · {best.prob:.1%}" in _texts(at, "markdown")
    assert "File: boot.png" in _texts(at, "text")
    assert not at.dataframe  # the summary table is for several files


def test_bad_files_get_an_error_each_and_the_good_ones_still_show_results(store, model):
    at = _page()
    sample, _label = _test_sample_png(1)
    bomb = Image.new("1", (8000, 8000))  # 64 megapixels in a few KB of PNG
    files = [
        ("notes.png", b"just some text, renamed to .png\n", "image/png"),
        ("sample.png", sample, "image/png"),
        ("huge.png", b"\x89PNG" + bytes(MAX_IMAGE_BYTES), "image/png"),
        ("bomb.png", _png(bomb), "image/png"),
    ]
    at = _upload(at, "predict_images", files)
    assert not at.exception
    errors = _texts(at, "error")
    assert len(errors) == 3
    assert "not an image this app can read" in errors[0]
    assert "image is too large (10.0 MB" in errors[1]
    assert "image too large: 8000 x 8000 pixels" in errors[2]
    best = predict(model, sample, 1)[0]
    assert f"Top-1: **{best.label}** · {best.prob:.1%}" in _texts(at, "markdown")
    table = at.dataframe[0].value
    assert list(table["File"]) == ["notes.png", "sample.png", "huge.png", "bomb.png"]
    assert table["Top-1"][1] == best.label and table["Probability"][1] == round(best.prob * 100, 1)
    assert table["Problem"][0].startswith("not an image") and pd.isna(table["Problem"][1])
    ranks = ["Top-1", "Probability", "2nd", "Probability (2nd)", "3rd", "Probability (3rd)", "Problem"]
    assert list(table.columns[1:]) == ranks


def test_top_k_changes_the_number_of_classes_listed(store):
    at = _page()
    files = [("a.png", _test_sample_png(2)[0], "image/png"), ("b.png", _test_sample_png(3)[0], "image/png")]
    at = _upload(at, "predict_images", files)
    at.slider(key="predict_k").set_value(5).run()
    assert not at.exception
    assert list(at.dataframe[0].value.columns)[-2:] == ["5th", "Probability (5th)"]


def test_a_long_or_markdown_file_name_is_shown_as_plain_shortened_text(store):
    name = "![x](http://evil.example/a.png) **bold** " + "long" * 40 + ".png"
    at = _upload(_page(), "predict_images", (name, _test_sample_png(4)[0], "image/png"))
    assert not at.exception
    shown = next(t for t in _texts(at, "text") if t.startswith("File: "))
    assert shown == f"File: {display_name(name)}"
    assert shown.startswith("File: ![x](http://evil.example/a.png) **bold**") and shown.endswith(
        "longlong.png"
    )
    assert len(shown) <= len("File: ") + 60 and "…" in shown


def test_bad_and_malicious_checkpoints_are_refused_and_the_previous_model_stays(store, model, tmp_path):
    at = _page()
    good = (store / RUN_ID / runs.CHECKPOINT).read_bytes()
    at = _upload(at, "predict_model_file", ("model.pth", good, "application/octet-stream"))
    assert not at.exception
    chosen = at.selectbox(key="predict_model").value
    assert chosen.startswith("upload:")
    assert any("recognised from their shapes" in c for c in _texts(at, "caption"))

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    payload = io.BytesIO()
    torch.save({"linear_relu_stack.0.weight": Exploit()}, payload)
    at = _upload(at, "predict_model_file", ("evil.pth", payload.getvalue(), "application/octet-stream"))
    assert not at.exception
    assert "not allowed in a checkpoint" in _texts(at, "error")[0]
    assert not marker.exists()
    assert at.selectbox(key="predict_model").value == chosen
    assert "This file was not loaded; the model in use has not changed." in _texts(at, "caption")

    at = _upload(at, "predict_model_file", ("notes.pth", b"not a model at all", "application/octet-stream"))
    assert not at.exception
    assert (
        "notes\\.pth is not a valid checkpoint (not a PyTorch zip file; it looks like a text file)"
        in (_texts(at, "error")[0])
    )
    assert at.selectbox(key="predict_model").value == chosen
    data, _label = _test_sample_png(5)
    at = _upload(at, "predict_images", ("sample.png", data, "image/png"))
    best = predict(model, data, 1)[0]  # the uploaded weights are the run's, so the answer is the same
    assert f"Top-1: **{best.label}** · {best.prob:.1%}" in _texts(at, "markdown")


def test_the_test_sample_view_shows_prediction_against_truth(store, model):
    images, labels = load_split("test")
    at = _page()
    at.selectbox(key="predict_sample_class").set_value(CLASSES.index("Bag")).run()
    assert not at.exception
    index = at.session_state["predict_sample"]
    assert int(labels[index]) == CLASSES.index("Bag")
    best = predict(model, images[index], 1)[0]
    verdict = (
        ":green[:material/check_circle: correct]" if best.label == "Bag" else ":red[:material/cancel: wrong]"
    )
    line = f"Prediction: **{best.label}** · {best.prob:.1%} — truth: **Bag** · {verdict}"
    assert line in _texts(at, "markdown")
    for _ in range(5):  # the same index twice in a row has a 1-in-1000 chance; five tries make it moot
        at.button(key="predict_next_sample").click().run()
        if at.session_state["predict_sample"] != index:
            break
    assert at.session_state["predict_sample"] != index
    assert int(labels[at.session_state["predict_sample"]]) == CLASSES.index("Bag")


def test_the_model_is_loaded_once_not_on_every_rerun(store, monkeypatch):
    loads = []
    real = ui.cache.load_checkpoint
    monkeypatch.setattr(ui.cache, "load_checkpoint", lambda path: loads.append(path) or real(path))
    ui.cache.checkpoint_from_file.clear()
    at = _page()
    at.slider(key="predict_k").set_value(4).run()
    at.run()
    assert not at.exception
    assert len(loads) == 1


def test_one_uploaded_image_is_classified_within_100_ms_on_cpu(model):
    for data in (_test_sample_png(6)[0], _photo()):
        timings = []
        for _ in range(5):  # the best of five: this machine is shared, the number is the code's
            start = time.perf_counter()
            predict(model, prepare_upload(data).tensor, 3)
            timings.append(time.perf_counter() - start)
        assert min(timings) < 0.100


FORMATS = [("P", "GIF"), ("LA", "PNG"), ("RGBA", "PNG"), ("I;16", "PNG"), ("1", "BMP"), ("CMYK", "JPEG")]


@pytest.mark.parametrize(("mode", "fmt"), [*FORMATS, ("L", "WEBP")])
def test_every_allowed_format_gets_a_preview_and_the_28x28_input(mode, fmt):
    image = Image.new("RGB", (900, 700), (236, 232, 225))
    ImageDraw.Draw(image).rectangle((300, 100, 600, 600), fill=(40, 50, 90))
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, fmt)
    prepped = prepare_upload(buffer.getvalue())
    assert prepped.preview.mode in ("RGB", "RGBA") and max(prepped.preview.size) == 280
    assert prepped.model_view.size == (280, 280) and prepped.tensor.shape == (1, 1, 28, 28)
    assert "inverted" in prepped.steps and "cropped to the item" in prepped.steps


def test_with_no_model_the_page_offers_quick_training_and_a_second_start_is_refused(real_data, run_store):
    at, other_tab = _page_in_app(), _page_in_app()
    assert not at.exception
    assert any("There is no trained model yet" in i for i in _texts(at, "info"))
    assert at.file_uploader(key="predict_images")  # photos can be dropped before there is a model
    at.button(key="predict_quick_train").click().run()
    started = runs.list_runs()
    try:
        assert len(started) == 1 and started[0].config == preset("recommended", epochs=1)
        assert not at.exception and not _texts(at, "error")
        assert "Training run" in at.get("progress")[0].proto.text
        other_tab.button(key="predict_quick_train").click().run()  # a tab still showing the button
        assert "already training" in _texts(other_tab, "error")[0]
        assert len(runs.list_runs()) == 1
    finally:
        runs.stop(started[0].id)
        assert not runs.wait(started[0].id, timeout=90).active
    at.run()  # the stopped run saved a checkpoint: the page now offers it
    assert at.selectbox(key="predict_model").value == f"run:{started[0].id}"


def test_a_photo_dropped_before_any_model_is_kept_and_classified_once_one_is_trained(real_data, run_store):
    at = _upload(_page_in_app(), "predict_images", ("trousers.jpg", _photo(), "image/jpeg"))
    assert not at.exception and not _texts(at, "error")
    captions = [c for image in at.image for c in image.captions]
    assert captions == ["Your image", "What the model sees (28×28)"]
    assert any("No model to ask yet" in i for i in _texts(at, "info"))
    at.button(key="predict_quick_train").click().run()
    started = runs.list_runs()
    assert len(started) == 1
    finished = runs.wait(started[0].id, timeout=300)
    assert finished.status == "finished", finished.error
    at.run()  # what the progress fragment's rerun does when the run ends; the photo is not dropped again
    assert not at.exception
    assert at.selectbox(key="predict_model").value == f"run:{started[0].id}"
    model = load_checkpoint(finished.checkpoint).model
    best = predict(model, prepare_upload(_photo()).tensor, 1)[0]
    assert f"Top-1: **{best.label}** · {best.prob:.1%}" in _texts(at, "markdown")
    assert "File: trousers.jpg" in _texts(at, "text")
    assert not any("No model to ask yet" in i for i in _texts(at, "info"))


def test_a_file_of_the_wrong_kind_on_either_drop_zone_is_told_what_that_zone_takes(store):
    at = _page()
    sample, _label = _test_sample_png(7)
    at = _upload(at, "predict_model_file", ("shirt.png", sample, "image/png"))
    assert not at.exception
    error = _texts(at, "error")[0]
    assert "is an image, not a model: this drop zone takes a .pth or .pt file" in error
    assert "Photos go in “Drop images of clothing here” below" in error
    assert at.selectbox(key="predict_model").value == f"run:{RUN_ID}"  # the model in use stays
    model_bytes = (store / RUN_ID / runs.CHECKPOINT).read_bytes()
    files = [("model.pth", model_bytes, "application/octet-stream"), ("notes.txt", b"hello\n", "text/plain")]
    at = _upload(at, "predict_images", files)
    assert not at.exception
    errors = _texts(at, "error")[1:]
    assert "this is a model file: drop it on “…or upload a model.pth” above" in errors[0]
    assert "a .txt file is not an image: this drop zone takes PNG, JPEG, WebP, BMP or GIF images" in errors[1]


def test_names_are_cleaned_shortened_and_escaped():
    assert display_name("shirt.png") == "shirt.png"
    assert display_name("evil\u202egnp.exe\n") == "evil�gnp.exe�"
    long = display_name("a" * 100 + ".jpeg")
    assert len(long) == 60 and long.endswith("aaaaaaa.jpeg") and "…" in long
    assert escape_markdown("**x** [a](b) `c` <i>") == r"\*\*x\*\* \[a\]\(b\) \`c\` \<i\>"


def test_which_pixels_mattered_shows_three_maps_for_an_upload_and_a_test_sample(store):
    at = _page()
    at.toggle(key="predict_explain").set_value(True).run()
    at = _upload(at, "predict_images", ("boot.png", _test_sample_png(0)[0], "image/png"))
    assert not at.exception and not _texts(at, "error")
    captions = [c for image in at.image for c in image.captions]
    methods = ["Input gradient (autograd)", "Integrated Gradients (Captum)", "Occlusion (Captum)"]
    assert captions.count(methods[0]) == 2  # the upload's maps and the test-set sample's
    assert all(captions.count(name) == 2 for name in methods)
    assert sum("Which pixels mattered for" in m for m in _texts(at, "markdown")) == 2
    assert any("blacked out" in c for c in _texts(at, "caption"))  # each map says what it means
