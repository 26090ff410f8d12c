"""The Predict page given a checkpoint that inflates: one error line, and the page goes on working."""

import io

from PIL import Image
from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import PROJECT_ROOT, load_split
from core.model.checkpoint import save_checkpoint
from core.model.networks import build_model
from core.runs import store as runstore
from core.training.config import TrainConfig
from tests.unit.test_hostile_checkpoints import deflated_zeros

PAGE = str(PROJECT_ROOT / "pages" / "Predict.py")
RUN_ID = "20260101-000000-bomb"


def _finished_run(store) -> None:
    directory = runs.create_run(TrainConfig(), store / RUN_ID)
    save_checkpoint(build_model("mlp"), directory / runs.CHECKPOINT, model_name="mlp", model_options={})
    runstore._write_status(directory, status="finished")


def _sample_png() -> bytes:
    images, _labels = load_split("test")
    buffer = io.BytesIO()
    Image.fromarray(images[0].numpy()).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_inflating_checkpoint_gets_one_error_line_and_the_page_still_predicts(
    real_data, run_store, tmp_path
):
    _finished_run(run_store)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    chosen = at.selectbox(key="predict_model").value
    assert chosen == f"run:{RUN_ID}"

    bomb = deflated_zeros(tmp_path / "model.pth", 2**26).read_bytes()  # 256 KB that unpack to 256 MB
    at.file_uploader(key="predict_model_file").set_value(("model.pth", bomb, "application/octet-stream"))
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "is compressed with DEFLATE, which torch.save never does" in errors[0]
    assert "This file was not loaded; the model in use has not changed." in [c.value for c in at.caption]
    assert at.selectbox(key="predict_model").value == chosen

    at.file_uploader(key="predict_images").set_value(("sample.png", _sample_png(), "image/png"))
    at.run()
    assert not at.exception
    assert any(m.value.startswith("Top-1: **") for m in at.markdown)
