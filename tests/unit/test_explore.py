import re
import time

import pytest
import torch
from PIL import Image

from core.data import explore
from core.data.fashion import CLASSES, CustomImageDataset, fashion_mnist, load_split, raw_dir
from core.learn.programs import datasets as programs
from core.learn.programs.datasets import ExplorerView
from tests.conftest import make_tiny_dataset, run_program

# ---- seeded, filtered samples ----------------------------------------------------------------------


def test_sample_indices_are_reproducible_distinct_and_change_with_the_seed():
    labels = torch.arange(1000) % 10
    first = explore.sample_indices(labels, None, 9, seed=7)
    assert first == explore.sample_indices(labels, None, 9, seed=7)
    assert len(set(first)) == 9
    assert first != explore.sample_indices(labels, None, 9, seed=8)


def test_sample_indices_only_draw_the_chosen_classes():
    labels = torch.arange(1000) % 10
    indices = explore.sample_indices(labels, [3, 7], 25, seed=0)
    assert len(indices) == 25
    assert {int(labels[i]) for i in indices} == {3, 7}


def test_sample_indices_return_what_there_is_when_few_match():
    labels = torch.tensor([0, 1, 1, 2, 1])
    assert sorted(explore.sample_indices(labels, [1], 9, seed=0)) == [1, 2, 4]
    assert explore.sample_indices(labels, [5], 9, seed=0) == []


def test_a_grid_of_real_samples_is_built_well_within_300_ms(real_data):
    images, labels = load_split("train")
    start = time.perf_counter()
    indices = explore.sample_indices(labels, [0, 5, 9], 9, seed=123)
    thumbs = [explore.to_display(images[i], 112) for i in indices]
    elapsed = time.perf_counter() - start
    assert len(thumbs) == 9 and thumbs[0].shape == (112, 112)
    assert elapsed < 0.3, f"a 3x3 grid took {elapsed * 1000:.0f} ms"


# ---- class statistics ------------------------------------------------------------------------------


def test_class_counts_include_empty_classes():
    assert explore.class_counts(torch.tensor([0, 2, 2, 2]), 4) == [1, 0, 3, 0]


def test_class_means_average_each_class_and_leave_empty_ones_black():
    images = torch.tensor([[[0, 10]], [[20, 30]], [[100, 100]]], dtype=torch.uint8)  # (3, 1, 2)
    means = explore.class_means(images, torch.tensor([0, 0, 1]), 3)
    assert means.shape == (3, 1, 2)
    assert means[0].tolist() == [[10.0, 20.0]]
    assert means[1].tolist() == [[100.0, 100.0]]
    assert means[2].tolist() == [[0.0, 0.0]]


def test_pixel_stats_of_a_known_image():
    stats = explore.pixel_stats(torch.tensor([[0, 255], [255, 0]], dtype=torch.uint8))
    assert (stats.min, stats.max, stats.mean, stats.std) == (0.0, 255.0, 127.5, 127.5)


# ---- the DataLoader view ---------------------------------------------------------------------------


def test_first_batches_keep_the_files_order_without_shuffle(tmp_path):
    make_tiny_dataset(raw_dir(tmp_path), n_test=10)
    dataset = fashion_mnist("test", root=tmp_path)
    first, second = explore.first_batches(dataset, batch_size=4, shuffle=False, seed=0)
    images, labels = load_split("test", tmp_path)
    torch.testing.assert_close(first[0][:, 0], images[:4].float() / 255)
    assert first[1].tolist() == labels[:4].tolist()
    assert explore.same_batches(first, second)
    assert explore.batch_lines(*first) == (
        "Feature batch shape: torch.Size([4, 1, 28, 28])",
        "Labels batch shape: torch.Size([4])",
    )


def test_first_batches_reshuffle_every_epoch_the_same_way_for_a_seed(tmp_path):
    make_tiny_dataset(raw_dir(tmp_path), n_train=40)
    dataset = fashion_mnist("train", root=tmp_path)
    state = torch.random.get_rng_state()
    first, second = explore.first_batches(dataset, batch_size=20, shuffle=True, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the loader's own generator, not torch's
    assert not explore.same_batches(first, second)
    again = explore.first_batches(dataset, batch_size=20, shuffle=True, seed=3)
    assert all(explore.same_batches(a, b) for a, b in zip((first, second), again, strict=True))
    other = explore.first_batches(dataset, batch_size=20, shuffle=True, seed=4)
    assert not explore.same_batches(first, other[0])


def test_labels_are_named_and_laid_out_as_the_mosaic():
    labels = torch.tensor([9, 0, 3, 7, 8])
    names = explore.named_labels(labels, CLASSES)
    assert names == ["9 Ankle boot", "0 T-shirt/top", "3 Dress", "7 Sneaker", "8 Bag"]
    assert explore.label_rows(labels, CLASSES, 2) == [names[:2], names[2:4], names[4:]]


def test_epoch_lines_name_the_first_labels_and_say_whether_the_order_changed():
    x = torch.zeros(10, 1, 2, 2)
    first, second = (x, torch.arange(10)), (x, torch.arange(10).flip(0))
    lines = explore.epoch_lines([first, second], CLASSES)
    assert lines[0] == "Epoch 1 starts with: " + ", ".join(f"{i} {CLASSES[i]}" for i in range(8))
    assert lines[1].startswith("Epoch 2 starts with: 9 Ankle boot, 8 Bag, 7 Sneaker")
    assert lines[2] == "The same order in both epochs: False"
    assert explore.epoch_lines([first, first], CLASSES)[2] == "The same order in both epochs: True"


def test_a_real_sample_is_a_float_tensor_with_a_channel(real_data):
    image, label = fashion_mnist("train")[0]
    lines = explore.describe_sample(image, label, CLASSES[label])
    assert lines[:2] == ("img.shape = torch.Size([1, 28, 28])", "img.dtype = torch.float32")
    assert lines[2].startswith("values 0.000 to 1.000, mean ")
    assert lines[3] == "label = 9 (Ankle boot)"  # the first training image is an ankle boot


def test_round_trip_writes_pngs_and_a_csv_and_reads_the_same_pixels_back(real_data):
    dataset = fashion_mnist("test")
    trip = explore.round_trip(dataset, [5, 6, 7])
    images, labels = load_split("test")
    expected = "file,label\n" + "".join(f"test_{i}.png,{int(labels[i])}\n" for i in (5, 6, 7))
    assert trip.annotations == expected
    for (image, label), i in zip(trip.items, (5, 6, 7), strict=True):
        assert image.dtype == torch.uint8 and image.shape == (1, 28, 28)
        assert torch.equal(image[0], images[i]) and label == int(labels[i])
    lines = explore.custom_lines(trip.items, CLASSES)
    assert lines[0] == "len(custom_data) = 3"
    assert lines[1] == f"custom_data[0]: torch.Size([1, 28, 28]) torch.uint8, label {int(labels[5])} " + (
        f"({CLASSES[int(labels[5])]})"
    )


# ---- display helpers -------------------------------------------------------------------------------


def test_to_display_upscales_by_a_whole_factor_with_sharp_pixels():
    image = torch.tensor([[0, 255], [128, 7]], dtype=torch.uint8)
    shown = explore.to_display(image, 9)  # 9 // 2 = 4
    assert shown.shape == (8, 8) and shown.dtype.name == "uint8"
    assert (shown[:4, :4] == 0).all() and (shown[:4, 4:] == 255).all() and (shown[4:, 4:] == 7).all()


def test_to_display_takes_tensor_floats_rgb_and_drops_alpha():
    assert explore.to_display(torch.ones(1, 28, 28), 28).max() == 255
    rgba = torch.zeros(4, 5, 6, dtype=torch.uint8)
    rgba[0] = 200
    shown = explore.to_display(rgba, 6)
    assert shown.shape == (5, 6, 3) and (shown[..., 0] == 200).all()


def test_mosaic_places_images_row_by_row_with_gaps():
    images = torch.arange(1, 4).float().view(3, 1, 1, 1).expand(3, 1, 2, 2)  # three 2x2 tiles valued 1..3
    sheet = explore.mosaic(images, columns=2, gap=1)
    assert sheet.shape == (5, 5)
    assert sheet[0, 0] == 1 and sheet[0, 3] == 2 and sheet[3, 0] == 3
    assert sheet[0, 2] == 3  # the gap takes the lightest value


# ---- custom datasets -------------------------------------------------------------------------------


def _write_custom(folder, rows, *, subdir=None, csv_name="annotations.csv"):
    images = folder / subdir if subdir else folder
    images.mkdir(parents=True)
    for name, _label in rows:
        Image.new("L", (10, 12), color=90).save(images / name)
    (folder / csv_name).write_text("".join(f"{name},{label}\n" for name, label in rows))


def test_discovery_finds_each_folder_with_a_csv(tmp_path):
    _write_custom(tmp_path / "shoes", [("a.png", 1)], subdir="images")
    _write_custom(tmp_path / "tops", [("b.png", 0)], csv_name="labels.csv")
    (tmp_path / "empty").mkdir()
    (tmp_path / "stray.csv").write_text("x.png,1\n")
    found = explore.discover_custom_datasets(tmp_path)
    assert [info.name for info in found] == ["shoes", "tops"]
    assert found[0].annotations_file == tmp_path / "shoes" / "annotations.csv"
    assert found[0].img_dir == tmp_path / "shoes" / "images"
    assert found[1].annotations_file == tmp_path / "tops" / "labels.csv"
    assert found[1].img_dir == tmp_path / "tops"


def test_discovery_without_a_folder_finds_nothing(tmp_path):
    assert explore.discover_custom_datasets(tmp_path / "missing") == []


def test_opened_custom_dataset_yields_images_and_labels(tmp_path):
    _write_custom(tmp_path / "set", [("a.png", 3), ("b.png", 1)])
    (info,) = explore.discover_custom_datasets(tmp_path)
    dataset = explore.open_custom(info)
    assert isinstance(dataset, CustomImageDataset)
    assert explore.custom_labels(dataset).tolist() == [3, 1]
    image, label = dataset[1]
    assert image.shape == (1, 12, 10) and label == 1


@pytest.mark.parametrize("n", [1, 5])
def test_mosaic_of_one_row_is_as_wide_as_its_images(n):
    assert explore.mosaic(torch.zeros(n, 28, 28), columns=n).shape == (28, n * 30 - 2)


# ---- the page's "code you would write", run as a learner would ------------------------------------


def _numbers(line: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+\.\d+", line)]


@pytest.mark.parametrize("shuffle", [True, False])
def test_the_explorer_program_prints_what_the_page_computes(real_data, tmp_path, shuffle):
    view = ExplorerView(
        split="test", classes=(7, 8), grid=3, seed=5, sample=123, batch_size=10, shuffle=shuffle,
        custom_first=100, custom_count=3,
    )  # fmt: skip
    printed = run_program(programs.program(view), tmp_path).splitlines()
    dataset = fashion_mnist("test")
    labels = load_split("test")[1]

    indices = explore.sample_indices(labels, [7, 8], 9, seed=5)
    assert printed[:9] == [f"#{i} · {CLASSES[int(labels[i])]}" for i in indices]
    image, label = dataset[123]
    expected = explore.describe_sample(image, label, CLASSES[label])
    shown = printed[9:13]
    assert shown[:2] == list(expected[:2]) and shown[3] == expected[3]
    assert _numbers(shown[2]) == pytest.approx(_numbers(expected[2]), abs=2e-3)

    trip = explore.round_trip(dataset, [100, 101, 102])
    assert printed[13:17] == explore.custom_lines(trip.items, CLASSES)
    assert (tmp_path / "my_images" / "annotations.csv").read_text() == trip.annotations

    batches = explore.first_batches(dataset, 10, shuffle, seed=5)
    epochs = explore.epoch_lines(batches, CLASSES)
    assert printed[17:] == [*explore.batch_lines(*batches[0]), *epochs]
    assert epochs[-1].endswith(str(not shuffle))


def test_the_explorer_program_takes_the_controls_as_literals():
    source = programs.program(ExplorerView(split="train", seed=42, batch_size=7, shuffle=False)).source()
    assert "pool = torch.arange(len(training_data))" in source  # all classes: no filter line
    assert "torch.Generator().manual_seed(42)" in source and "batch_size=7," in source
    assert "shuffle=False," in source and "train_dataloader = DataLoader(" in source
    for name in ("def __init__(self", "def __len__(self)", "def __getitem__(self, idx)"):
        assert name in source
    compile(source, "explorer.py", "exec")
