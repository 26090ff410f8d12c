"""core.data.transforms: the catalogue, pipelines and their code, one-hot targets, the mapping to training."""

import numpy as np
import pytest
import torch
from PIL import Image

from core.base.errors import BadConfig
from core.data import transforms as tf
from core.data.augment import Augment
from core.data.to_augment import to_augment

REQUIRED = (
    "ToTensor",
    "Normalize",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomResizedCrop",
    "RandomAffine",
    "GaussianBlur",
    "RandomErasing",
    "ColorJitter",
)
# Every catalogue entry once, in an order that runs: PIL-or-tensor steps, ToTensor, tensor-only steps.
EVERYTHING = [
    ("RandomHorizontalFlip", {"p": 0.5}),
    ("RandomVerticalFlip", {"p": 0.3}),
    ("RandomRotation", {"degrees": 20.0}),
    ("RandomAffine", {"degrees": 5.0, "translate": 0.1, "scale": (0.8, 1.2), "shear": 10.0}),
    ("ColorJitter", {"brightness": 0.5, "contrast": 0.3}),
    ("GaussianBlur", {"kernel_size": 5, "sigma": (0.5, 1.5)}),
    ("Resize", {"size": 36}),
    ("RandomCrop", {"size": 32, "padding": 2}),
    ("RandomResizedCrop", {"size": 28, "scale": (0.6, 1.0), "ratio": (0.8, 1.25)}),
    ("ToTensor", {}),
    ("Normalize", {"mean": 0.3, "std": 0.35}),
    ("RandomErasing", {"p": 0.9, "scale": (0.05, 0.2), "value": 0.5}),
]


@pytest.fixture
def image() -> Image.Image:
    """A 28x28 grayscale PIL image with structure, like the ones the Dataset hands out."""
    g = torch.Generator().manual_seed(0)
    pixels = torch.zeros(28, 28, dtype=torch.uint8)
    pixels[4:24, 8:20] = torch.randint(60, 256, (20, 12), generator=g, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy(), mode="L")


def test_catalogue_covers_the_issue_and_every_entry_builds_and_runs(image):
    assert set(REQUIRED) <= set(tf.CATALOGUE)
    assert {name for name, _ in EVERYTHING} == set(tf.CATALOGUE)
    for name, spec in tf.CATALOGUE.items():
        assert spec.cls.__name__ == name
        steps = [(name, {}), ("ToTensor", {})] if spec.takes != "tensor" else [("ToTensor", {}), (name, {})]
        if name == "ToTensor":
            steps = [(name, {})]
        out = tf.apply_pipeline(tf.build_pipeline(steps), [image], seed=0)[0]
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape[0] == 1, name


def test_every_parameter_spec_is_usable_by_a_widget():
    for spec in tf.CATALOGUE.values():
        for param in spec.params:
            assert param.kind in ("float", "int", "range")
            assert param.help and param.min < param.max and param.step > 0
            values = param.default if param.kind == "range" else (param.default,)
            assert all(param.min <= v <= param.max for v in values), (spec.name, param.name)
            assert param.as_arg in ("value", "channel", "pair")


def test_shown_code_builds_the_same_pipeline(image):
    code = tf.pipeline_code(EVERYTHING)
    namespace: dict = {}
    exec(compile(code, "<pipeline_code>", "exec"), namespace)
    from_code, built = namespace["transform"], tf.build_pipeline(EVERYTHING)
    assert [type(t).__name__ for t in from_code.transforms] == [name for name, _ in EVERYTHING]
    for seed in (0, 1, 2):
        ours = tf.apply_pipeline(built, [image], seed)[0]
        torch.manual_seed(seed)
        theirs = from_code(image)
        assert torch.equal(ours, theirs)
    assert torch.equal(namespace["target_transform"](4), tf.one_hot(4))


def test_code_carries_the_chosen_parameters():
    code = tf.pipeline_code([("RandomRotation", {"degrees": 30}), ("ToTensor", {}), ("Normalize", {})])
    assert "transforms.RandomRotation(degrees=30.0)," in code
    assert "transforms.Normalize(mean=(0.286,), std=(0.353,))," in code
    assert "transforms.Compose([" in code


def test_one_hot_is_the_tutorial_target_transform():
    for label in range(10):
        vector = tf.one_hot(label)
        assert vector.shape == (10,) and vector.dtype == torch.float32
        assert vector[label] == 1 and vector.sum() == 1
        tutorial = torch.zeros(10, dtype=torch.float).scatter_(0, torch.tensor(label), value=1)
        assert torch.equal(tf.target_transform()(label), tutorial)
    with pytest.raises(BadConfig, match="between 0 and 9"):
        tf.one_hot(10)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([("Normalize", {}), ("ToTensor", {})], "Step 1, Normalize, works on tensors.*below ToTensor"),
        ([("RandomErasing", {})], "RandomErasing, works on tensors"),
        ([("ToTensor", {}), ("ToTensor", {})], "Step 2, ToTensor, needs a PIL image"),
        ([("GaussianBlur", {"kernel_size": 4})], "kernel_size must be odd"),
        ([("ToTensor", {}), ("Normalize", {"std": 0.0})], "std must be above 0"),
        ([("RandomAffine", {"scale": (1.2, 0.8)})], r"scale must be given as \(min, max\)"),
        ([("RandomRotation", {"degrees": 200})], "degrees must be between 0.0 and 180.0"),
        ([("RandomRotation", {"angle": 3})], "no parameter"),
        ([("RandomRotation", {"degrees": "lots"})], "must be a number"),
        ([("Sharpen", {})], "unknown transform 'Sharpen'"),
    ],
)
def test_bad_pipelines_are_refused_in_words(steps, message):
    with pytest.raises(BadConfig, match=message):
        tf.build_pipeline(steps)


def test_a_step_that_fails_on_the_image_says_so(image):
    pipeline = tf.build_pipeline([("RandomCrop", {"size": 40, "padding": 0})])
    with pytest.raises(BadConfig, match="cannot run on a 28×28 PIL image"):
        tf.apply_pipeline(pipeline, [image], seed=0)


def test_draws_are_reproducible_varied_and_leave_the_global_rng_alone(image):
    pipeline = tf.build_pipeline([("RandomRotation", {"degrees": 45}), ("ToTensor", {})])
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = tf.random_draws(pipeline, image, seed=7, n=6)
    assert torch.equal(torch.rand(3), expected_next)  # fork_rng: the caller's stream is untouched
    again = tf.random_draws(pipeline, image, seed=7, n=6)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert len({tuple(t.flatten().tolist()) for t in first}) > 1
    other = tf.random_draws(pipeline, image, seed=8, n=6)
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_a_pipeline_without_to_tensor_returns_pil_and_stats_convert_it(image):
    out = tf.apply_pipeline(tf.build_pipeline([("Resize", {"size": 56})]), [image], seed=0)[0]
    assert isinstance(out, Image.Image) and out.size == (56, 56)
    tensor, converted = tf.as_tensor(out)
    assert converted and tensor.shape == (1, 56, 56)
    stats = tf.tensor_stats(tensor)
    assert stats.shape == (1, 56, 56) and stats.dtype == "torch.float32" and 0 <= stats.min <= stats.max <= 1


def test_tensor_stats_and_histogram():
    t = torch.tensor([[0.0, 0.25], [0.5, 1.0]])
    stats = tf.tensor_stats(t)
    assert (stats.shape, stats.min, stats.max, stats.mean) == ((2, 2), 0.0, 1.0, 0.4375)
    assert stats.std == pytest.approx(float(t.std()))
    centres, counts = tf.pixel_histogram(t, 0.0, 1.0, bins=4)
    assert centres == [0.125, 0.375, 0.625, 0.875] and counts == [1, 1, 1, 1]


def test_display_array_upscales_and_flags_rescaled_values():
    pixels, rescaled = tf.display_array(torch.tensor([[[0.0, 1.0]]]), size=10)
    assert pixels.shape == (5, 10) and not rescaled and pixels.max() == 255 and pixels.min() == 0
    pixels, rescaled = tf.display_array(torch.tensor([[-1.0, 3.0]]), size=2)
    assert rescaled and pixels.tolist() == [[0, 255]]


def test_to_augment_maps_flip_rotation_affine_erasing_and_lists_the_rest():
    mapping = to_augment(
        [
            ("RandomHorizontalFlip", {"p": 0.7}),
            ("RandomRotation", {"degrees": 12}),
            ("RandomAffine", {"degrees": 20, "translate": 0.15, "scale": (0.8, 1.1), "shear": 5}),
            ("ColorJitter", {}),
            ("GaussianBlur", {}),
            ("ToTensor", {}),
            ("Normalize", {}),
            ("RandomErasing", {"p": 0.4}),
        ]
    )
    assert mapping.augment == Augment(hflip=0.7, rotate=20.0, translate=0.15, scale=0.2, erase=0.4)
    assert mapping.unused == ("ColorJitter", "GaussianBlur", "Normalize")
    assert [line.split(" → ")[0] for line in mapping.used] == [
        "RandomHorizontalFlip",
        "RandomRotation",
        "RandomAffine",
        "ToTensor",
        "RandomErasing",
    ]
    assert any("shear is not used" in note for note in mapping.notes)


def test_to_augment_of_crops_and_of_nothing():
    assert to_augment([("ToTensor", {})]).augment == Augment()
    assert not to_augment([]).augment.active
    crop = to_augment([("RandomCrop", {"size": 28, "padding": 4})]).augment
    assert crop.translate == round(4 / 28, 4)
    zoom = to_augment([("RandomResizedCrop", {"scale": (0.64, 1.0), "size": 32})])
    assert zoom.augment.scale == pytest.approx(0.25)
    assert any("size 32 is ignored" in note for note in zoom.notes)
    capped = to_augment([("RandomResizedCrop", {"scale": (0.05, 1.0)})])
    assert capped.augment.scale == 1.0 and any("capped" in note for note in capped.notes)


def test_sample_image_is_the_datasets_pil_image(real_data):
    from core.data.fashion import load_split

    image, label = tf.sample_image("train", 0)
    images, labels = load_split("train")
    assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (28, 28)
    assert label == int(labels[0])
    assert torch.equal(torch.from_numpy(np.array(image)), images[0])
