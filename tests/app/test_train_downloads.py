"""What the Train page hands out: the form's or a run's config as a script, and metrics.csv."""

import csv
import io
import json

from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.model.checkpoint import save_checkpoint
from core.model.networks import build_model
from core.runs import store as runstore
from core.training.config import PRESETS, TrainConfig
from core.training.export import notebook, script

PAGE = str(PROJECT_ROOT / "pages" / "Train.py")


def test_the_forms_settings_download_as_a_script_that_compiles(run_store, downloads):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.button_group[0].set_value("recommended").run()
    at.text_input(key="train_epochs").input("3").run()
    assert not at.exception
    data = downloads["train_fashionmnist.py"]
    expected = script(PRESETS["recommended"].replace(epochs=3))
    assert data == expected.encode()
    compile(data, "train_fashionmnist.py", "exec")
    assert any(code.value.strip() == expected.strip() for code in at.code)  # shown before it is downloaded

    at.text_input(key="train_epochs").input("1.5").run()  # no config, no script: it says why
    assert any(c.value.startswith("Export as script: once the fields are right") for c in at.caption)


def test_a_run_downloads_as_its_script_and_its_metrics_with_readable_times(run_store, downloads):
    config = TrainConfig(epochs=2, lr=0.01, limit_batches=20)
    directory = runs.create_run(config, run_store / "20260101-000000-beef")
    save_checkpoint(build_model("mlp"), directory / runs.CHECKPOINT, model_name="mlp", model_options={})
    runstore._write_status(directory, status="finished", epoch=1, step=20)
    rows = [
        {"kind": "batch", "epoch": 1, "step": 10, "loss": 2.0, "time": 1796100000.25},
        {"kind": "epoch", "epoch": 1, "step": 20, "test_acc": 0.5, "seconds": 3.0, "time": 1796100012.5},
    ]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    data = downloads["train_20260101-000000-beef.py"]
    assert data == script(config, "run 20260101-000000-beef").encode()
    compile(data, "train_20260101-000000-beef.py", "exec")
    # Beside it, the same as a notebook: the file `python -m core export RUN --format notebook` writes.
    assert (
        downloads["train_20260101-000000-beef.ipynb"] == notebook(config, "run 20260101-000000-beef").encode()
    )
    assert downloads["train_fashionmnist.ipynb"]  # and the form's settings, for a run not made yet

    table = list(csv.DictReader(io.StringIO(downloads["20260101-000000-beef-metrics.csv"].decode())))
    assert [r["time"] for r in table] == ["2026-12-01T04:40:00.250+00:00", "2026-12-01T04:40:12.500+00:00"]
    assert [r["elapsed_s"] for r in table] == ["0", "12.25"]
