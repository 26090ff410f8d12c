import pytest
import torch
from PIL import Image
from torchvision.transforms import Lambda

from core.base.errors import DatasetCorrupt, DatasetNotFound
from core.data.fashion import (
    CLASSES,
    FILES,
    CustomImageDataset,
    TensorBatches,
    dataset_status,
    fashion_mnist,
    load_split,
    prepare,
    raw_dir,
)
from tests.conftest import make_tiny_dataset


def test_classes_are_the_ten_fashionmnist_names():
    assert len(CLASSES) == 10
    assert CLASSES[0] == "T-shirt/top" and CLASSES[9] == "Ankle boot"


# ---- discovery order -------------------------------------------------------------------------------


def test_local_files_win_over_the_system_copy(tmp_path):
    make_tiny_dataset(raw_dir(tmp_path), n_train=20)
    system = tmp_path / "system"
    make_tiny_dataset(system, n_train=30, gz=True)
    assert prepare(tmp_path, system_dir=system, allow_download=False) == "local"
    assert load_split("train", tmp_path)[0].shape == (20, 28, 28)


def test_system_copy_is_unpacked_when_nothing_is_local(tmp_path):
    system = tmp_path / "system"
    make_tiny_dataset(system, n_train=30, gz=True)
    assert not dataset_status(tmp_path).ready
    assert prepare(tmp_path, system_dir=system, allow_download=False) == "system"
    status = dataset_status(tmp_path)
    assert status.ready and status.source == "system"
    for name in FILES["train"] + FILES["test"]:
        assert (raw_dir(tmp_path) / name).is_file()
    assert load_split("train", tmp_path)[0].shape == (30, 28, 28)


def test_nothing_found_says_what_to_run(tmp_path):
    with pytest.raises(DatasetNotFound, match="make data") as info:
        prepare(tmp_path, system_dir=tmp_path / "nowhere", allow_download=False)
    assert "sudo apt-get install -y dataset-fashion-mnist" in str(info.value)


def test_truncated_file_gives_a_clear_error(tmp_path):
    make_tiny_dataset(raw_dir(tmp_path))
    path = raw_dir(tmp_path) / FILES["train"][0]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetCorrupt, match="truncated"):
        load_split("train", tmp_path)


def test_wrong_header_gives_a_clear_error(tmp_path):
    make_tiny_dataset(raw_dir(tmp_path))
    (raw_dir(tmp_path) / FILES["test"][1]).write_bytes(b"hello, not an idx file")
    with pytest.raises(DatasetCorrupt, match="not a FashionMNIST IDX file"):
        load_split("test", tmp_path)


def test_corrupt_system_gzip_gives_a_clear_error(tmp_path):
    system = tmp_path / "system"
    make_tiny_dataset(system, gz=True)
    gz = system / f"{FILES['train'][0]}.gz"
    gz.write_bytes(gz.read_bytes()[:40])
    with pytest.raises(DatasetCorrupt, match="truncated or not a gzip file"):
        prepare(tmp_path, system_dir=system, allow_download=False)


# ---- the real dataset ----------------------------------------------------------------------------


def test_real_splits_have_the_published_sizes(real_data):
    train_x, train_y = load_split("train")
    test_x, test_y = load_split("test")
    assert train_x.shape == (60000, 28, 28) and train_x.dtype == torch.uint8
    assert test_x.shape == (10000, 28, 28)
    assert torch.bincount(train_y).tolist() == [6000] * 10
    assert torch.bincount(test_y).tolist() == [1000] * 10


def test_tensor_batches_match_the_torchvision_dataset_pixel_for_pixel(real_data):
    dataset = fashion_mnist("test")  # the tutorial's ToTensor() Dataset
    x, y = load_split("test")
    batches = TensorBatches(x, y, batch_size=64)
    first_x, first_y = next(iter(batches))
    assert first_x.shape == (64, 1, 28, 28) and first_x.dtype == torch.float32
    for i in (0, 1, 17, 63):
        image, label = dataset[i]
        assert torch.equal(first_x[i], image)
        assert first_y[i].item() == label
    last_x, _ = list(batches)[-1]
    assert torch.equal(last_x[-1], dataset[9999][0])


def test_shuffle_is_seeded_and_covers_every_sample_once(real_data):
    x, y = load_split("test")
    ids = torch.arange(len(y))

    def order(seed):
        batches = TensorBatches(x, ids, batch_size=1000, shuffle=True, seed=seed)
        return torch.cat([b for _, b in batches])

    a, b, c = order(1), order(1), order(2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(a.sort().values, ids)


def test_limit_batches_caps_an_epoch(real_data):
    x, y = load_split("test")
    batches = TensorBatches(x, y, batch_size=100, limit_batches=3)
    assert len(batches) == 3 and len(list(batches)) == 3 and batches.num_samples == 300


# ---- the tutorial's custom dataset -----------------------------------------------------------------


def _custom_folder(tmp_path, rows):
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for i in range(3):
        Image.new("L", (28, 28), color=40 * i).save(img_dir / f"item{i}.png")
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(rows)
    return csv_file, img_dir


def test_custom_dataset_reads_csv_and_images(tmp_path):
    csv_file, img_dir = _custom_folder(tmp_path, "file,label\nitem0.png,0\nitem1.png, 5\nitem2.png,9\n")
    one_hot = Lambda(lambda y: torch.zeros(10).scatter_(0, torch.tensor(y), value=1))
    ds = CustomImageDataset(csv_file, img_dir, target_transform=one_hot)
    assert len(ds) == 3
    image, target = ds[1]
    assert image.shape == (1, 28, 28) and image.dtype == torch.uint8 and image[0, 0, 0] == 40
    assert target.argmax().item() == 5 and target.sum().item() == 1


def test_custom_dataset_names_missing_files(tmp_path):
    csv_file, img_dir = _custom_folder(tmp_path, "item0.png,0\nghost.png,1\n")
    with pytest.raises(DatasetNotFound, match="ghost.png"):
        CustomImageDataset(csv_file, img_dir)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("item0.png,0\nitem1.png\n", "line 2"),
        ("item0.png,0\nitem1.png,shirt\n", "not a whole number"),
        ("item0.png,0\n../secret.png,1\n", "not a file name inside"),
        ("", "no `filename,label` rows"),
    ],
)
def test_custom_dataset_bad_rows(tmp_path, rows, message):
    csv_file, img_dir = _custom_folder(tmp_path, rows)
    with pytest.raises(DatasetCorrupt, match=message):
        CustomImageDataset(csv_file, img_dir)


def test_custom_dataset_undecodable_image(tmp_path):
    csv_file, img_dir = _custom_folder(tmp_path, "item0.png,0\nbroken.png,1\n")
    (img_dir / "broken.png").write_bytes(b"not an image at all")
    ds = CustomImageDataset(csv_file, img_dir)
    with pytest.raises(DatasetCorrupt, match="broken.png"):
        ds[1]
