"""The Learn pages (Tensors, Autograd, Optimization) open from a link and write their controls back."""

import pytest
from streamlit.testing.v1 import AppTest

from core.data.fashion import PROJECT_ROOT

PAGES = PROJECT_ROOT / "pages"


def _page(name: str, **query) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    return at


def _notices(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if "From the link" in c.value]


def test_tensors_opens_from_a_link_and_each_panel_writes_its_part(real_data):
    query = {
        "shape": "4x2",
        "dtype": "float64",
        "seed": "7",
        "sample": "12",
        "join": "stack",
        "op": "in-place add",
    }
    at = _page("Tensors.py", **query)
    assert not _notices(at) and not at.error
    assert (
        at.text_input(key="tensors_shape").value == "4x2"
        and at.selectbox(key="tensors_dtype").value == "float64"
    )
    assert (
        at.number_input(key="tensors_sample").value == 12
        and at.selectbox(key="tensors_op").value == "in-place add"
    )
    assert any("shape = (4, 2,)" in c.value and "dtype=torch.float64" in c.value for c in at.code)
    at.number_input(key="tensors_seed").set_value(9).run()  # a fragment's rerun writes its own part
    assert at.query_params["seed"] == "9" and at.query_params["join"] == "stack"


def test_autograd_opens_from_a_link_and_writes_it_back(real_data):
    at = _page("Autograd.py", seed="3", x="7", z="2", sample="42")
    assert not _notices(at)
    assert at.slider(key="autograd_n_in").value == 7 and at.slider(key="autograd_n_out").value == 2
    assert at.number_input(key="autograd_seed").value == 3
    at.slider(key="autograd_n_out").set_value(4).run()
    assert at.query_params["z"] == "4" and at.query_params["x"] == "7" and at.query_params["sample"] == "42"


def test_optimization_opens_from_a_link_and_writes_it_back(real_data, run_store):
    at = _page("Optimization.py", batch="256", epochs="2", lr="0.01", optimizer="adam", step_lr="0.001")
    assert not _notices(at)
    assert at.select_slider(key="optimization_batch").value == 256
    assert at.select_slider(key="optimization_lr").value == 0.01
    assert at.selectbox(key="optimization_step_optimizer").value == "adam"
    assert any("batch_size = 256" in c.value for c in at.code)
    at.slider(key="optimization_epochs").set_value(3).run()
    assert (
        at.query_params["epochs"] == "3"
        and at.query_params["batch"] == "256"
        and at.query_params["lr"] == "0.01"
    )


@pytest.mark.parametrize(
    ("page", "query", "reason"),
    [
        ("Tensors.py", {"dtype": "complex1024"}, "dtype 'complex1024' is not one of float32"),
        ("Tensors.py", {"shape": "1" * 41}, "shape is 41 characters long; at most 40 are allowed."),
        ("Tensors.py", {"sample": "60000"}, "sample 60,000 is out of range"),
        ("Tensors.py", {"op": "__import__('os').system('x')"}, "is not one of matrix product"),
        ("Autograd.py", {"x": "9"}, "x 9 is out of range (1 to 8)."),
        ("Autograd.py", {"seed": "0x10"}, "seed '0x10' is not a whole number."),
        ("Optimization.py", {"batch": "100"}, "batch '100' is not one of 16, 32, 64"),
        ("Optimization.py", {"lr": "1e9"}, "lr '1e9' is not one of"),
        ("Optimization.py", {"optimizer": "lbfgs"}, "optimizer 'lbfgs' is not one of sgd, adam, adamw."),
    ],
)
def test_a_bad_link_value_is_refused_with_a_notice(real_data, run_store, page, query, reason):
    at = _page(page, **query)
    assert not at.error
    notices = _notices(at)
    assert len(notices) == 1 and reason in notices[0]
