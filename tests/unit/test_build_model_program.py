"""Build Model's "code you would write", run as a learner runs it: it prints what the page shows."""

import re

import torch

from core.data.fashion import load_split
from core.learn import build_model as bm
from core.learn.layers import walk
from core.learn.programs.build_model import program
from tests.conftest import run_program

SAMPLE = 17


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", text)]


def _after(out: str, start: str, stop: str) -> str:
    return out.split(start, 1)[1].split(stop, 1)[0]


def test_the_mlp_file_prints_the_pages_model_prediction_walk_and_parameters(real_data, tmp_path):
    out = run_program(program("mlp", None, None, SAMPLE, (SAMPLE, 2, 7, 5)), tmp_path)
    images, labels = load_split("test")
    model = bm.untrained_model("mlp")
    traced = bm.trace(model, bm.to_input(images[SAMPLE]))
    assert out.startswith("Using cpu device\n" + str(model) + "\n")  # print(model), as the Structure tab
    assert f"Label: {int(labels[SAMPLE])}\nPredicted class: tensor([{traced.predicted}])" in out
    printed = _numbers(_after(out, "Predicted class:", "torch.Size"))
    torch.testing.assert_close(
        torch.tensor(printed), traced.probs[0], atol=1e-4, rtol=0
    )  # printed to 4 places
    walked = walk(images[SAMPLE : SAMPLE + 2], 7, 5)
    assert f"{walked.input_image.size()}\n{walked.flat_image.size()}\n{walked.hidden1.size()}\n" in out
    before = _numbers(_after(out, "Before ReLU:", "After ReLU:"))
    torch.testing.assert_close(torch.tensor(before), walked.hidden1.detach().flatten(), atol=1e-4, rtol=0)
    assert (
        out.count("Layer: ") == 6
        and "Layer: linear_relu_stack.0.weight | Size: torch.Size([512, 784])" in out
    )
    shown = _numbers(bm.parameters_printout(model))
    torch.testing.assert_close(
        torch.tensor(_numbers(out.split("Layer: ", 1)[1])), torch.tensor(shown), atol=1e-4, rtol=0
    )


def test_a_runs_file_loads_its_weights_and_predicts_as_the_page_does(real_data, tmp_path):
    trained = bm.untrained_model("cnn", seed=1)  # other weights than the file's own seeded model
    path = tmp_path / "run" / "model.pth"
    path.parent.mkdir()
    torch.save(trained.state_dict(), path)
    options = {"channels": 32, "hidden": 128, "dropout": 0.25}
    out = run_program(program("cnn", options, path, 3, (3, 1, 4, 0)), tmp_path)
    traced = bm.trace(trained, bm.to_input(load_split("test")[0][3]))
    assert "class SmallCNN(nn.Module):" in program("cnn", options, path, 3, (3, 1, 4, 0)).source()
    assert f"Predicted class: tensor([{traced.predicted}])" in out
    printed = _numbers(_after(out, "Predicted class:", "torch.Size"))
    torch.testing.assert_close(torch.tensor(printed), traced.probs[0], atol=1e-4, rtol=0)
