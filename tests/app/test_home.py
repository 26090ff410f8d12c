from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import PROJECT_ROOT
from core.runs import store as runstore
from core.training.config import TrainConfig


def _home() -> AppTest:
    return AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()


def test_home_shows_device_dataset_and_an_empty_run_list(real_data, run_store):
    at = _home()
    assert not at.exception
    assert at.title[0].value.endswith("FashionMNIST Studio")
    text = " ".join(m.value for m in at.markdown)
    assert "CPU" in text
    assert any("FashionMNIST is ready (source:" in s.value for s in at.success)
    assert any("No training runs yet" in i.value for i in at.info)


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
    assert links["7. Optimization"] == "Optimization" and links["1. Quickstart"] == "Train"
    assert links["8. Save & Load"] == "Save_Load"  # its own Learn page, no longer Predict


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
