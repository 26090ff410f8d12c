"""core.training.export: every config becomes a standalone script that compiles; one trains for real and
writes a model.pth that core and the tutorial's class both load."""

import ast
import itertools
import os
import subprocess
import sys

import pytest
import torch

from core.data.augment import Augment
from core.data.fashion import PROJECT_ROOT
from core.model.checkpoint import load_checkpoint
from core.model.networks import NeuralNetwork, build_model
from core.training.config import OPTIMIZERS, SCHEDULES, TrainConfig, preset
from core.training.export import script

AUGMENTS = [Augment(), Augment(hflip=0.5, rotate=10.0, translate=0.1, scale=0.1, erase=0.25)]


@pytest.mark.parametrize(
    ("model", "optimizer", "schedule", "augment"),
    list(itertools.product(["mlp", "cnn"], OPTIMIZERS, SCHEDULES, AUGMENTS)),
)
def test_every_combination_compiles(model, optimizer, schedule, augment):
    config = TrainConfig(
        model=model, optimizer=optimizer, lr_schedule=schedule, augment=augment, momentum=0.9
    )
    text = script(config)
    compile(text, "exported.py", "exec")
    assert 'torch.save(model.state_dict(), "model.pth")' in text
    assert ("RandomAffine" in text) == augment.active and ("LambdaLR" in text) == (schedule == "cosine")
    assert f"torch.manual_seed({config.seed})" in text
    assert "import core" not in text and "from core" not in text  # standalone: torch and torchvision only


@pytest.mark.parametrize("config", [preset("recommended"), TrainConfig(model="cnn", hidden=64, dropout=0.3)])
def test_the_written_model_class_has_cores_keys_and_shapes(config):
    namespace = {"__name__": "exported"}
    text = script(config)
    definitions = text.split("model = ")[0].split("test_dataloader = DataLoader(test_data, batch_size=1000)")[
        1
    ]
    exec("import torch\nfrom torch import nn\n" + definitions, namespace)  # the class only, no training
    cls = namespace["NeuralNetwork" if config.model == "mlp" else "SmallCNN"]
    ours = build_model(config.model, **config.model_options()).state_dict()
    theirs = cls().state_dict()
    assert {k: v.shape for k, v in theirs.items()} == {k: v.shape for k, v in ours.items()}


def test_an_exported_script_trains_and_its_model_pth_loads_in_core_and_the_tutorials_class(
    real_data, tmp_path
):
    config = preset("recommended", limit_batches=3, epochs=1)
    path = tmp_path / "train_export.py"
    path.write_text(script(config, "a test"))
    (tmp_path / "data").symlink_to(PROJECT_ROOT / "data")  # the script reads root="data", as the tutorial
    env = {**os.environ, "PYTHONPATH": ""}  # nothing of the project on the path: it must stand alone
    done = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Accuracy:" in done.stdout and "Saved PyTorch Model State to model.pth" in done.stdout
    loaded = load_checkpoint(tmp_path / "model.pth")
    assert loaded.model_name == "mlp"
    tutorial = NeuralNetwork()
    tutorial.load_state_dict(torch.load(tmp_path / "model.pth", weights_only=True))
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(tutorial.eval()(x), loaded.model.eval()(x))


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_a_config_for_several_processes_is_exported_as_one_process_and_says_so(model):
    one, two = script(TrainConfig(model=model)), script(TrainConfig(model=model, processes=2))
    compile(two, "exported.py", "exec")
    assert "DistributedDataParallel" not in one
    note = two.split('"""')[1]  # the docstring: the only difference
    assert "in 2 processes (DistributedDataParallel)" in note and "in one process" in note
    assert ("batch norm" in note) == (model == "cnn")
    assert two.replace(note, "") == one.replace(one.split('"""')[1], "")
    assert "torch.distributed" not in two and "init_process_group" not in two


PLANTED = 'z"""\n__import__("os").system("id > PWNED")\n"""'  # a run folder's name, as issue 22 found it


def test_a_source_named_as_code_stays_a_string_in_the_script(tmp_path):
    text = script(TrainConfig(), f"run {PLANTED}")
    tree = ast.parse(text)
    calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert not any(isinstance(f, ast.Attribute) and f.attr == "system" for f in calls)
    assert not any(isinstance(f, ast.Name) and f.id == "__import__" for f in calls)
    named = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXPORTED_FROM"
    )
    assert ast.literal_eval(named) == f"run {PLANTED}"


def test_the_cli_refuses_a_run_folder_named_as_code_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "core", "train", "--epochs", "1", "--run-dir", str(tmp_path / PLANTED)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "cannot name a run" in result.stderr and not (tmp_path / PLANTED).exists()
