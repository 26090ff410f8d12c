"""The Build Model page: print(model), the layer table, one test image traced, trained weights, bad input."""

import re
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core import runs
from core.data.fashion import CLASSES, PROJECT_ROOT, load_split
from core.learn import build_model as bm
from core.learn.layers import walk
from core.learn.programs.build_model import program
from core.model.checkpoint import load_checkpoint
from core.runs import store as runstore
from tests.app.conftest import make_trained_store

PAGE = str(PROJECT_ROOT / "pages" / "Build_Model.py")
RUN_ID = "20260101-000000-bmod"
SAMPLE = 17  # a fixed test image


@pytest.fixture(scope="module")
def trained_store(real_data, tmp_path_factory) -> Path:
    return make_trained_store(tmp_path_factory, "build_model", RUN_ID, model="mlp")


def _page(**query: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _texts(at: AppTest, kind: str) -> list[str]:
    return [element.value for element in at.get(kind)]


def _codes(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def _prediction(at: AppTest) -> str:
    return next(m for m in _texts(at, "markdown") if m.startswith("Predicted **"))


def _expected_line(model: torch.nn.Module, index: int) -> str:
    images, labels = load_split("test")
    traced = bm.trace(model, bm.to_input(images[index]))
    predicted, label = traced.predicted, int(labels[index])
    return (
        f"Predicted **{CLASSES[predicted]}** ({float(traced.probs[0, predicted]):.1%}) · "
        f"true **{CLASSES[label]}**"
    )


def test_the_mlp_page_prints_the_model_counts_669706_parameters_and_follows_one_image(run_store):
    at = _page()
    assert not at.exception and not at.error and not at.warning
    assert at.title[0].value.endswith(" Build Model")
    model = bm.untrained_model("mlp")
    assert str(model) in _codes(at)  # print(model), as PyTorch prints it
    assert "**Total: 669,706 parameters** · `sum(p.numel() for p in model.parameters())`" in _texts(
        at, "markdown"
    )
    table = at.dataframe[0].value
    assert list(table["layer"]) == [name for name, _ in bm.leaf_modules(model)]
    assert list(table["parameters"]) == ["0", "401,920", "0", "262,656", "0", "5,130"]
    assert list(table["output shape"])[-1] == "(1, 10)"
    dot = at.get("graphviz_chart")[0].proto.spec
    assert all(f"{name}: " in dot for name in table["layer"])
    assert _prediction(at).startswith(_expected_line(model, 0))
    assert bm.parameters_printout(model).removesuffix("\n") in _codes(at)  # st.code drops the last line break
    assert any("test_data[0]" in code and "nn.Softmax(dim=1)(logits)" in code for code in _codes(at))
    walk = {"images": "3", "features": "20", "layer_seed": "0"}  # the Model layers tab's controls
    assert dict(at.query_params) == {"model": "mlp", "weights": "untrained", "sample": "0", **walk}


def test_the_class_the_layer_lines_the_walk_and_the_file_to_copy(run_store):
    at = _page(sample=str(SAMPLE), features="7", images="2", layer_seed="5")
    assert not at.exception
    codes = _codes(at)
    assert any(
        code.startswith("import torch") and "class NeuralNetwork(nn.Module):" in code for code in codes
    )
    # each traced layer names the __init__ expression that made it
    made = "# made in __init__ by nn.Linear(28*28, 512)\nx = model.linear_relu_stack[0](x)"
    assert any(code.startswith(made) for code in codes)
    # model(X) runs the model's own hooks, model.forward(X) skips them: counted on this model
    assert any(
        "ran **1** time(s) for `model(X)` and **0** for `model.forward(X)`" in c.value for c in at.caption
    )
    # the Model layers tab: the sizes and the ReLU printout of this minibatch, from these controls
    walked = walk(load_split("test")[0][SAMPLE : SAMPLE + 2], 7, 5)
    sizes = f"{walked.input_image.size()}\n{walked.flat_image.size()}"
    assert sizes not in codes  # asked first (ui.learn.moment): what shape does Flatten give?
    at.text_input(key="moment_build-flatten_guess").input("2, 784")
    at.button(key="moment_build-flatten_commit").click().run()
    assert any(s.value.startswith("Right: you said 2") and "**(2, 784)**" in s.value for s in at.success)
    codes = _codes(at)
    assert sizes in codes
    assert f"Before ReLU: {walked.hidden1}\n\n\nAfter ReLU: {walked.relu}" in codes
    # the page ends with the whole file, written from the same controls
    whole = program("mlp", None, None, SAMPLE, (SAMPLE, 2, 7, 5)).source()
    assert whole.rstrip("\n") in codes
    assert [b.proto.label for b in at.get("download_button")][-2:] == [
        "Download build_model.py",
        "Open as notebook",
    ]
    said = next(m.value for m in at.markdown if "prints what this page shows" in m.value)
    assert "it needs torch and torchvision, and downloads FashionMNIST into `./data` the first time" in said


def test_each_relu_says_how_many_units_it_zeroed(run_store):
    at = _page(sample=str(SAMPLE))
    images, _ = load_split("test")
    traced = bm.trace(bm.untrained_model("mlp"), bm.to_input(images[SAMPLE]))
    hidden = [layer.output for layer in traced.layers if layer.kind == "Linear"][:2]
    expected = [int((h < 0).sum()) for h in hidden]
    shown = [int(n) for n in re.findall(r"ReLU set \*\*(\d+) of 512\*\*", " ".join(_texts(at, "caption")))]
    assert shown == expected and all(0 < n < 512 for n in shown)


def test_trained_weights_give_the_runs_prediction_and_the_untrained_one_for_comparison(store):
    at = _page()
    assert at.selectbox(key="build_model_weights").options[1].startswith(f"Run {RUN_ID} · ")
    at.number_input(key="build_model_sample").set_value(SAMPLE)
    at.selectbox(key="build_model_weights").set_value(f"run:{RUN_ID}").run()
    assert not at.exception and not at.error
    trained = load_checkpoint(store / RUN_ID / runs.CHECKPOINT).model
    assert _prediction(at).startswith(_expected_line(trained, SAMPLE))
    assert any(c.startswith("Untrained (seed 0), the same model says **") for c in _texts(at, "caption"))
    code = next(c for c in _codes(at) if "load_state_dict" in c)
    assert "nn.Sequential(nn.ReLU(), nn.Dropout(0.1))" in code and "weights_only=True" in code
    assert f"{RUN_ID}/model.pth" in code
    assert "Dropout" in next(c for c in _codes(at) if c.startswith("NeuralNetwork("))  # the run's own layers
    assert at.query_params["weights"] == f"run:{RUN_ID}"


def test_the_cnn_shows_feature_maps_and_its_own_total(store):
    at = _page()
    at.selectbox(key="build_model_weights").set_value(f"run:{RUN_ID}").run()
    at.radio(key="build_model_model").set_value("cnn").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="build_model_weights").value == "untrained"  # the MLP run does not fit a CNN
    model = bm.untrained_model("cnn")
    total = sum(p.numel() for p in model.parameters())
    assert f"**Total: {total:,} parameters** · `sum(p.numel() for p in model.parameters())`" in _texts(
        at, "markdown"
    )
    assert str(model) in _codes(at)
    assert "class SmallCNN(nn.Module):" in next(c for c in _codes(at) if "print(model)" in c)
    pictures = [image.proto.imgs[0].caption for image in at.get("image")]
    maps = [c for c in pictures if " feature maps of " in c]
    assert (
        len(maps) == 8
        and maps[0].startswith("32 feature maps of 28×28")
        and maps[-1].startswith("64 feature maps of 7×7")
    )
    assert _prediction(at).startswith(_expected_line(model, 0))
    assert pictures[-1].startswith("The 32 3×3 filters of `features.0`")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"sample": "12345"},
            "From the link: sample 12,345 is out of range (0 to 9,999). Showing test image 0 instead.",
        ),
        ({"sample": "-3"}, "From the link: sample -3 is out of range"),
        ({"sample": "abc"}, "From the link: sample 'abc' is not a whole number"),
        (
            {"model": "resnet"},
            "From the link: model 'resnet' is not one of mlp, cnn. Showing the MLP instead.",
        ),
        ({"weights": "run:nope"}, "From the link: weights 'run:nope' is not one of untrained."),
        ({"weights": "run:../../etc"}, "From the link: weights 'run:../../etc' is not one of untrained."),
        ({"model": "m" * 5000}, "From the link: a value of 5,000 characters is too long."),
    ],
)
def test_a_bad_link_says_what_is_wrong_and_shows_the_default(run_store, query, message):
    at = _page(**query)
    assert not at.exception and not at.error and not at.warning
    notices = [c for c in _texts(at, "caption") if "From the link" in c]
    assert len(notices) == 1 and message in notices[0]
    assert at.number_input(key="build_model_sample").value == 0
    assert at.radio(key="build_model_model").value == "mlp"


def test_a_good_link_opens_that_model_and_image(run_store):
    at = _page(model="cnn", sample=str(SAMPLE))
    assert not at.exception and not at.warning
    assert at.radio(key="build_model_model").value == "cnn"
    assert _prediction(at).startswith(_expected_line(bm.untrained_model("cnn"), SAMPLE))


def test_an_out_of_range_index_in_session_state_is_a_message_not_an_exception(run_store):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["build_model_sample"] = 10_000
    at.run()
    assert not at.exception and not at.error
    assert [w.value for w in at.warning] == [
        "Sample 10,000 is out of range: the test split has 10,000 images, numbered 0 to 9,999. "
        "Showing test image 0 instead."
    ]
    assert at.number_input(key="build_model_sample").value == 0
    assert _prediction(at).startswith(_expected_line(bm.untrained_model("mlp"), 0))
    at.number_input(key="build_model_sample").set_value(5).run()
    assert not at.warning and "#5 · " in at.get("image")[0].proto.imgs[0].caption


def test_a_run_whose_checkpoint_fails_to_load_shows_the_error(trained_store, tmp_path, monkeypatch):
    store = tmp_path / "runs"
    shutil.copytree(trained_store, store)
    pth = store / RUN_ID / runs.CHECKPOINT
    pth.write_bytes(pth.read_bytes()[:-100])  # damaged after saving: the sidecar's sha256 no longer matches
    monkeypatch.setattr(runstore, "RUNS_DIR", store)
    at = _page()
    at.selectbox(key="build_model_weights").set_value(f"run:{RUN_ID}").run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith(f"Run {RUN_ID}'s weights cannot be used: ")
    assert "sha256 mismatch" in at.error[0].value
    at.selectbox(key="build_model_weights").set_value("untrained").run()
    assert not at.exception and not at.error


def test_a_unit_of_the_first_layer_is_drawn_and_computed_two_ways(run_store):
    at = _page()
    at.slider(key="build_model_unit").set_value(42).run()
    assert not at.exception
    images, _ = load_split("test")
    unit = bm.unit_weights(bm.untrained_model("mlp"), bm.to_input(images[0]), 42)
    text = next(m for m in _texts(at, "markdown") if m.startswith("Weights times this image's pixels"))
    assert f"**{unit.by_hand:+.4f}**" in text and f"unit 42: **{unit.from_layer:+.4f}**" in text
    assert any("linear_relu_stack[0].weight[42]" in c for c in _codes(at))


def test_the_random_button_picks_another_image(run_store):
    at = _page()
    at.button[0].click().run()
    index = at.number_input(key="build_model_sample").value
    assert not at.exception and at.query_params["sample"] == str(index)
    assert at.get("image")[0].proto.imgs[0].caption.startswith(f"#{index} · ")


def test_the_page_runs_inside_the_apps_navigation(run_store):
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run().switch_page(PAGE).run()
    assert not at.exception and not at.error
    assert any("669,706 parameters" in m for m in _texts(at, "markdown"))
