"""A run as a Jupyter notebook (core.training.export.notebook): valid nbformat, the tutorial's sections, a
parameters cell first; its code cells, run in order in a subprocess, train and save a model.pth that the
tutorial's class loads. `python -m core export` writes the same files the Train page offers."""

import itertools
import os
import subprocess
import sys

import nbformat
import pytest
import torch

from core import runs
from core.base.notebooks import PARAMETERS_TAG, code_cells
from core.data.augment import Augment
from core.data.fashion import PROJECT_ROOT
from core.model.checkpoint import load_checkpoint
from core.model.networks import NeuralNetwork, build_model
from core.training.config import OPTIMIZERS, SCHEDULES, TrainConfig, preset
from core.training.export import notebook, notebook_name, script

AUGMENT = Augment(hflip=0.5, rotate=10.0, translate=0.1, scale=0.1, erase=0.25)


@pytest.mark.parametrize(
    ("model", "optimizer", "schedule", "augment"),
    list(itertools.product(["mlp", "cnn"], OPTIMIZERS, SCHEDULES, [Augment(), AUGMENT])),
)
def test_every_combination_is_a_valid_notebook_of_the_scripts_code(model, optimizer, schedule, augment):
    config = TrainConfig(model=model, optimizer=optimizer, lr_schedule=schedule, augment=augment, processes=2)
    text = notebook(config, "run 20260101-000000-beef")
    book = nbformat.reads(text, as_version=4)
    nbformat.validate(book)
    headings = [c.source.splitlines()[0] for c in book.cells if c.cell_type == "markdown"]
    assert headings == ["# FashionMNIST training", "## Parameters", "## Imports and the device",
                        "## Working with data", "## Creating Models", "## Optimizing the Model Parameters",
                        "## Training", "## Saving Models"]  # fmt: skip
    first = next(c for c in book.cells if c.cell_type == "code")
    assert first.metadata["tags"] == [PARAMETERS_TAG]
    assert first.source == f"epochs = {config.epochs!r}\nmax_batches = {config.limit_batches!r}"
    cells = code_cells(text)
    compile("\n\n".join(cells), "notebook.py", "exec")
    assert not any("args." in cell or "argparse" in cell for cell in cells)  # the parameters cell instead
    assert "DistributedDataParallel" in book.cells[0].source  # the script's note on processes, in words
    assert notebook(config, "run 20260101-000000-beef") == text  # the same file every time (cell ids too)


def _run_cells(text: str, folder, epochs: int = 1, max_batches: int = 3) -> subprocess.CompletedProcess:
    cells = code_cells(text)
    cells[0] = f"epochs = {epochs}\nmax_batches = {max_batches}"  # what a learner edits first
    (folder / "data").symlink_to(PROJECT_ROOT / "data")  # root="data", as the tutorial
    (folder / "notebook.py").write_text("\n\n".join(cells) + "\n")
    env = {**os.environ, "PYTHONPATH": ""}  # nothing of the project on the path: it stands alone
    return subprocess.run(
        [sys.executable, "notebook.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_notebooks_cells_train_and_save_a_model_the_tutorials_class_loads(real_data, tmp_path):
    config = preset("recommended", epochs=5, lr_schedule="cosine")
    done = _run_cells(notebook(config, "a test"), tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("Epoch ") == 1 and "Accuracy:" in done.stdout
    assert "Saved PyTorch Model State to model.pth" in done.stdout
    tutorial = NeuralNetwork()
    tutorial.load_state_dict(torch.load(tmp_path / "model.pth", weights_only=True))
    loaded = load_checkpoint(tmp_path / "model.pth")
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(tutorial.eval()(x), loaded.model.eval()(x))


def test_a_cnn_notebook_trains_with_augmentation(real_data, tmp_path):
    config = TrainConfig(model="cnn", hidden=32, augment=AUGMENT, optimizer="adamw")
    done = _run_cells(notebook(config), tmp_path, max_batches=2)
    assert done.returncode == 0, done.stderr[-2000:]
    model = build_model("cnn", **config.model_options())
    model.load_state_dict(torch.load(tmp_path / "model.pth", weights_only=True))


def _cli(*args, cwd=PROJECT_ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "core", "export", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_the_command_line_exports_the_files_the_page_gives(runs_dir, tmp_path):
    config = TrainConfig(epochs=3, lr=0.02, optimizer="adam", limit_batches=50)
    directory = runs.create_run(config, runs_dir / "20260101-000000-beef")
    env = {**os.environ, "STUDIO_RUNS_DIR": str(runs_dir)}
    by_id = _cli(directory.name, "--format", "notebook", "--output", tmp_path / "a.ipynb", env=env)
    assert by_id.returncode == 0, by_id.stderr
    assert (tmp_path / "a.ipynb").read_text() == notebook(config, f"run {directory.name}")
    by_folder = _cli(directory, "--format", "script", "--output", tmp_path / "a.py")
    assert by_folder.returncode == 0, by_folder.stderr
    assert (tmp_path / "a.py").read_text() == script(config, f"run {directory.name}")
    default = _cli(
        directory, "--format", "notebook", cwd=tmp_path, env={**env, "PYTHONPATH": str(PROJECT_ROOT)}
    )
    assert default.returncode == 0, default.stderr
    assert (tmp_path / notebook_name(directory.name)).is_file()
    missing = _cli("20990101-000000-dead", env=env)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "neither a run folder nor a run of the store" in missing.stderr
