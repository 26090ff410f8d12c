import time

import pytest
import torch
from PIL import Image

from core.data import explore
from core.data.fashion import CustomImageDataset, fashion_mnist, load_split, raw_dir
from tests.conftest import make_tiny_dataset

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


def test_batch_shapes_print_the_tutorials_lines_for_the_first_batch(tmp_path):
    make_tiny_dataset(raw_dir(tmp_path), n_test=10)
    dataset = fashion_mnist("test", root=tmp_path)
    preview = explore.batch_shapes(dataset, batch_size=4)
    assert preview.lines == (
        "Shape of X [N, C, H, W]: torch.Size([4, 1, 28, 28])",
        "Shape of y: torch.Size([4]) torch.int64",
    )
    images, labels = load_split("test", tmp_path)
    torch.testing.assert_close(preview.x[:, 0], images[:4].float() / 255)
    assert preview.y.tolist() == labels[:4].tolist()


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
