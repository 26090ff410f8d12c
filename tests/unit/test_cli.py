import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core import cli as cli_module
from core.base.device import resolve_device
from core.base.errors import BadConfig
from core.data.fashion import PROJECT_ROOT, load_split
from core.training.config import LIMITS, TrainConfig


def cli(*args, env_extra=None, timeout=180):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, real_data):
    """A run trained through the CLI, the way a terminal user would."""
    root = tmp_path_factory.mktemp("cli")
    run_dir = root / "runs" / "first"
    result = cli(
        "train", "--epochs", "1", "--limit-batches", "120", "--optimizer", "adam", "--batch-size", "128",
        "--run-dir", run_dir, env_extra={"STUDIO_RUNS_DIR": str(root / "runs")},
    )  # fmt: skip
    return result, run_dir


def test_train_prints_one_line_per_epoch_and_writes_the_run(trained):
    result, run_dir = trained
    assert result.returncode == 0, result.stderr
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 1 and "test acc" in epoch_lines[0]
    for name in ("config.json", "status.json", "metrics.jsonl", "model.pth", "model.json"):
        assert (run_dir / name).is_file(), name


def test_predict_prints_top3_per_image(trained, tmp_path):
    _, run_dir = trained
    x, _ = load_split("test")
    paths = []
    for i in range(2):
        path = tmp_path / f"sample{i}.png"
        Image.fromarray(x[i].numpy()).save(path)
        paths.append(path)
    result = cli("predict", *paths, "--checkpoint", run_dir / "model.pth")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    pattern = re.compile(
        r"^(.+): ([^,(]+) \((0\.\d\d|1\.00)\), ([^,(]+) \((0\.\d\d)\), ([^,(]+) \((0\.\d\d)\)$"
    )
    for path, line in zip(paths, lines, strict=True):
        match = pattern.match(line)
        assert match and match.group(1) == str(path), line


def test_predict_bad_image_is_one_line_and_nonzero(trained, tmp_path):
    _, run_dir = trained
    fake = tmp_path / "notes.png"
    fake.write_text("this is a text file")
    result = cli("predict", fake, "--checkpoint", run_dir / "model.pth")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "notes.png" in result.stderr


def test_predict_bad_checkpoint_is_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"garbage")
    image = tmp_path / "x.png"
    Image.new("L", (28, 28)).save(image)
    result = cli("predict", image, "--checkpoint", bad)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--epochs", "0"),
        ("train", "--model", "resnet"),
        ("train", "--lr", "fast"),
        ("predict", "x.png"),
        ("fly",),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    result = cli(*args, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "error:" in result.stderr


def test_importing_core_does_not_import_streamlit():
    files = (PROJECT_ROOT / "core").rglob("*.py")
    modules = sorted(
        ".".join(p.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in files
        if p.stem != "__main__"
    )
    assert "core.training.train" in modules and "core.model.predict" in modules
    code = f"import sys, {', '.join(modules)}; print('streamlit' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_data_status_reports_ready(real_data):
    result = cli("data", "status", timeout=60)
    assert result.returncode == 0 and "ready" in result.stdout
    assert Path(PROJECT_ROOT / "data" / "FashionMNIST" / "raw").is_dir()


OUT_OF_RANGE = [
    ("--epochs", "1001"), ("--epochs", "0"), ("--batch-size", "65537"), ("--lr", "inf"), ("--lr", "nan"),
    ("--lr", "1e308"), ("--momentum", "1"), ("--weight-decay", "1e300"), ("--weight-decay", "inf"),
    ("--seed", str(10**23)), ("--seed", "-1"), ("--limit-batches", "0"), ("--run-dir", ""),
    ("--epochs", "9" * 400), ("--seed", "9" * 400), ("--lr", "9" * 400), ("--batch-size", "-" + "9" * 400),
]  # fmt: skip


@pytest.mark.parametrize(("flag", "value"), OUT_OF_RANGE)
def test_out_of_range_training_values_exit_2_with_one_line(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_module.main(["train", flag, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {flag}" in err


def test_the_cli_ranges_are_trainconfigs_own(capsys):
    for field, limit in LIMITS.items():
        flag = "--" + field.replace("_", "-")
        if flag not in ("--epochs", "--batch-size", "--lr", "--momentum", "--weight-decay", "--seed"):
            continue
        above = str(int(limit.high) + 1) if limit.whole else str(limit.high * 2 or 2)
        with pytest.raises(BadConfig):
            TrainConfig(**{field: int(above) if limit.whole else float(above)})
        with pytest.raises(SystemExit):
            cli_module.main(["train", flag, above])
    assert capsys.readouterr().err.count("\n") == 6


def test_a_device_index_that_does_not_exist_is_refused():
    with pytest.raises(BadConfig, match="does not exist"):
        resolve_device("cpu:5")
    assert str(resolve_device("cpu")) == "cpu"


@pytest.mark.parametrize("target", ["a file", "/dev/null", "/proc/self", "a folder with files"])
def test_run_dir_must_be_a_new_or_empty_folder(target, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.pth").write_bytes(b"mine")
    (folder / ".x.tmp").write_bytes(b"draft")
    (tmp_path / "file").write_text("mine")
    path = {"a file": tmp_path / "file", "a folder with files": folder}.get(target, target)
    result = cli("train", "--epochs", "1", "--run-dir", path, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == [".x.tmp", "model.pth"]
    assert (tmp_path / "file").read_text() == "mine"


def test_the_internal_worker_command_refuses_a_folder_it_did_not_make(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".x.tmp").write_bytes(b"draft")
    (folder / "config.json").write_text("{}")
    result = cli("worker", folder, timeout=60)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "not a run folder" in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == [".x.tmp", "config.json"]  # no status.json, no cleanup


def test_python_warnings_do_not_add_lines_to_stderr(real_data):
    code = (
        "import sys, warnings; from core import cli; from core.data import fashion as data; "
        "real = data.dataset_status; "
        "data.dataset_status = lambda: (warnings.warn('noise from a library'), real())[1]; "
        "sys.exit(cli.main(['data', 'status']))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "noise" not in result.stderr, result.stderr
