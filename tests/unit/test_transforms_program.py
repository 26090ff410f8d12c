"""The Transforms page's "code you would write", run as a learner would and compared with core."""

import itertools
import re

import pytest

from core.data import transforms as tf
from core.learn.programs import transforms as programs
from tests.conftest import run_program

AUGMENTATION = [
    ("RandomHorizontalFlip", {"p": 0.5}),
    ("RandomRotation", {"degrees": 25.0}),
    ("ToTensor", {}),
    ("Normalize", {"mean": 0.3, "std": 0.35}),
    ("RandomErasing", {"p": 0.9, "scale": (0.05, 0.2), "value": 0.5}),
]
NO_TO_TENSOR = [("RandomRotation", {"degrees": 40.0}), ("Resize", {"size": 32})]
STATS = re.compile(r"  min (\S+), max (\S+), mean (\S+), std (\S+)")


def _printed_stats(lines: list[str]) -> list[tuple[str, list[float]]]:
    """(the '#idx: shape ..., dtype ...' line, [min, max, mean, std]) of each sample printed."""
    found = []
    for head, numbers in itertools.pairwise(lines):
        match = STATS.fullmatch(numbers)
        if head.startswith("#") and match:
            found.append((head, [float(v) for v in match.groups()]))
    return found


@pytest.mark.parametrize("steps", [AUGMENTATION, NO_TO_TENSOR], ids=["random-augmentation", "pil-output"])
def test_the_transforms_program_prints_what_the_page_computes(real_data, tmp_path, steps):
    indices, seed = [3, 4, 5], 7
    printed = run_program(programs.program(steps, indices, seed), tmp_path).splitlines()

    # What the page shows: its samples through its pipeline after torch.manual_seed(seed), in order. The
    # random transforms draw from torch's CPU generator, the same in the learner's process for the same seed.
    dataset = tf.raw_dataset("train")
    samples = [dataset[i] for i in indices]
    outputs = tf.apply_pipeline(tf.build_pipeline(steps), [image for image, _ in samples], seed)
    stats = _printed_stats(printed)
    assert len(stats) == len(indices)
    for (head, numbers), index, output in zip(stats, indices, outputs, strict=True):
        expected = tf.tensor_stats(tf.as_tensor(output)[0])
        assert head == f"#{index}: shape {expected.shape}, dtype {expected.dtype}"
        assert numbers == pytest.approx([expected.min, expected.max, expected.mean, expected.std], abs=2e-4)

    targets = [line for line in printed if line.startswith("y = ")]
    assert targets == [f"y = {label}  →  {tf.one_hot(label)}" for _, label in samples]


def test_the_transforms_program_takes_the_pipeline_and_seed_as_literals():
    source = programs.program(AUGMENTATION, [0, 1], 12345).source()
    assert "transforms.RandomRotation(degrees=25.0)," in source
    assert "transforms.Normalize(mean=(0.3,), std=(0.35,))," in source
    assert "torch.manual_seed(12345)" in source and "for idx in [0, 1]:" in source
    assert "target_transform=target_transform," in source and "transforms.ToTensor()(img)" not in source
    assert "transforms.ToTensor()(img)" in programs.program(NO_TO_TENSOR, [0], 0).source()
    compile(source, "transforms.py", "exec")
