from streamlit.testing.v1 import AppTest

from core import runs
from core.base import paths
from core.data.fashion import PROJECT_ROOT
from core.runs import store as runstore
from core.training.config import TrainConfig
from ui.nav import TUTORIAL


def _home() -> AppTest:
    return AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()


def test_home_starts_with_the_course_and_keeps_device_and_dataset_below(real_data, run_store):
    at = _home()
    assert not at.exception
    assert at.title[0].value.endswith("FashionMNIST Studio")
    assert at.subheader[0].value == "Start here"  # the first thing under the title
    assert [b.label for b in at.button] == ["Start with Tensors"]
    assert at.button[0].proto.type == "primary"
    details = [c.value for c in at.caption]
    assert any(c.startswith("**Device:** CPU") for c in details)
    assert any(
        "FashionMNIST is ready (copied from Debian's dataset-fashion-mnist package)" in c for c in details
    )
    assert not at.success and not at.warning  # the details are small text, not a banner
    assert any("No training runs yet" in i.value for i in at.info)


def test_the_start_button_opens_tensors(real_data, run_store):
    at = _home()
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value.endswith("Tensors")


def test_a_missing_dataset_is_said_at_the_top_with_what_to_run(run_store, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path / "nowhere")  # raw_dir reads it at call time
    at = _home()
    assert not at.exception
    assert "FashionMNIST is not prepared yet" in at.warning[0].value and "make data" in at.warning[0].value
    assert not any("FashionMNIST is ready" in c.value for c in at.caption)


def test_home_lists_the_latest_runs_with_status_and_accuracy(real_data, run_store):
    directory = runs.create_run(TrainConfig(model="cnn"), run_store / "20260101-000000-abcd")
    runstore._write_status(directory, status="finished", best_test_acc=0.9123)
    at = _home()
    assert not at.exception
    line = next(m.value for m in at.markdown if "20260101-000000-abcd" in m.value)
    assert "CNN" in line and "finished" in line and "91.2%" in line


def test_home_lists_the_tutorials_eight_sections_in_order_with_their_pages(real_data, run_store):
    at = _home()
    assert not at.exception
    links = {link.proto.label: link.proto.page for link in at.get("page_link")}
    assert list(links) == [
        "1. Quickstart", "2. Tensors", "3. Datasets & DataLoaders", "4. Transforms", "5. Build Model",
        "6. Autograd", "7. Optimization", "8. Save & Load",
    ]  # fmt: skip
    assert links["2. Tensors"] == "Tensors" and links["3. Datasets & DataLoaders"] == "Dataset_Explorer"
    assert links["5. Build Model"] == "Build_Model" and links["6. Autograd"] == "Autograd"
    assert links["7. Optimization"] == "Optimization" and links["1. Quickstart"] == "Tensors"  # the start
    assert links["8. Save & Load"] == "Save_Load"  # its own Learn page, no longer Predict
    quickstart = at.caption[[c.value for c in at.caption].index(TUTORIAL[0].about)]
    assert "Train runs" in quickstart.value  # the card still says where the whole loop is


def test_the_sidebar_groups_learn_pages_in_the_tutorials_order_then_the_tools():
    from ui.nav import LEARN, TOOLS, sections

    grouped = sections()
    learn = [
        "Tensors",
        "Dataset Explorer",
        "Transforms",
        "Build Model",
        "Autograd",
        "Optimization",
        "Save & Load",
    ]
    assert [p.title for p in grouped[LEARN]] == learn
    assert [p.url_path for p in grouped[LEARN]][-1] == "Save_Load"  # "&" has no place in an address
    assert "Save & Load" not in next(p for p in grouped[TOOLS] if p.title == "Predict").lesson
    assert [p.title for p in grouped[TOOLS]] == ["Train", "Predict"]
