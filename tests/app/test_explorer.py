import re
import time

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import core.base.paths
from core.data import explore
from core.data.fashion import CLASSES, PROJECT_ROOT, fashion_mnist, load_split
from core.learn.programs import datasets as programs
from core.learn.programs.datasets import ExplorerView

PAGE = str(PROJECT_ROOT / "pages" / "Dataset_Explorer.py")
GRID_CAPTION = re.compile(r"^#(\d+) · (.+)$")


@pytest.fixture
def no_custom(tmp_path, monkeypatch):
    monkeypatch.setattr(explore, "CUSTOM_ROOT", tmp_path / "custom")


def _explorer() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    return at


def _grid(at: AppTest) -> list[tuple[int, str]]:
    """(index, label text) of every grid image, read from the buttons under them."""
    buttons = (b for b in at.button if b.key and b.key.startswith("explorer_open_"))
    labels = (b.label.replace("\u2011", "-") for b in buttons)  # a non-breaking hyphen in T-shirt/top
    matches = (GRID_CAPTION.match(label) for label in labels)
    return [(int(m[1]), m[2]) for m in matches if m]


def _assert_labels_match(grid: list[tuple[int, str]], split: str = "train") -> None:
    labels = load_split(split)[1]
    assert all(CLASSES[int(labels[index])] == text for index, text in grid)


def test_nine_labelled_samples_and_shuffle_draws_new_ones(real_data, run_store, no_custom):
    at = _explorer()
    grid = _grid(at)
    assert len(grid) == 9 and len({i for i, _ in grid}) == 9
    _assert_labels_match(grid)

    seed_before = at.number_input(key="explorer_seed").value
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        at.button(key="explorer_shuffle").click().run()
        timings.append(time.perf_counter() - start)
    assert not at.exception
    shuffled = _grid(at)
    assert len(shuffled) == 9 and shuffled != grid
    _assert_labels_match(shuffled)
    seed_after = at.number_input(key="explorer_seed").value
    assert seed_after != seed_before
    assert min(timings) < 0.3, f"a new grid took {min(timings) * 1000:.0f} ms"

    # The seed shown reproduces the grid: type it back in after another shuffle.
    at.button(key="explorer_shuffle").click().run()
    at.number_input(key="explorer_seed").set_value(seed_after).run()
    assert _grid(at) == shuffled


def test_class_filter_and_grid_size(real_data, run_store, no_custom):
    at = _explorer()
    at.button_group(key="explorer_classes_fashion_train").set_value([7, 8]).run()
    grid = _grid(at)
    assert len(grid) == 9
    assert {text for _, text in grid} <= {"Sneaker", "Bag"}
    _assert_labels_match(grid)

    at.button_group(key="explorer_grid").set_value(4).run()
    grid = _grid(at)
    assert len(grid) == 16 and {text for _, text in grid} <= {"Sneaker", "Bag"}

    at.button_group(key="explorer_classes_fashion_train").set_value([]).run()
    assert not _grid(at)
    assert any("Pick at least one class" in i.value for i in at.info)

    at.button(key="explorer_all").click().run()
    assert at.button_group(key="explorer_classes_fashion_train").value == list(range(10))
    assert len(_grid(at)) == 16


def test_test_split_and_selected_sample_details(real_data, run_store, no_custom):
    at = _explorer()
    at.radio(key="explorer_split").set_value("test").run()
    grid = _grid(at)
    _assert_labels_match(grid, "test")
    index, text = grid[4]
    at.selectbox(key="explorer_pick_fashion_test").set_value(index).run()
    assert not at.exception
    image, label = fashion_mnist("test")[index]  # test_data[index]: what the Dataset hands out
    assert image.dtype == torch.float32 and image.shape == (1, 28, 28)
    assert any(m.value == f"**Index** {index} · **Label** {label} ({text})" for m in at.markdown)
    stats = explore.pixel_stats(image)
    shown = {m.label: m.value for m in at.metric}
    assert shown == {
        "Min": f"{stats.min:.3f}",  # ToTensor's floats in [0, 1], not the file's uint8 0-255
        "Max": f"{stats.max:.3f}",
        "Mean": f"{stats.mean:.3f}",
        "Std": f"{stats.std:.3f}",
    }
    described = explore.describe_sample(image, label, text)
    assert described[:2] == ("img.shape = torch.Size([1, 28, 28])", "img.dtype = torch.float32")
    assert "\n".join(described) in [c.value for c in at.code]
    assert any(f"What `test_data[{index}]` hands out" in c.value for c in at.caption)
    assert any(f"img, label = test_data[{index}]" in c.value for c in at.code)  # the code behind it


def _code_with(at: AppTest, text: str) -> str:
    return next(c.value for c in at.code if text in c.value)


def _printed(at: AppTest, start: str) -> str:
    """The output block that starts with `start` (the code printing it holds the same words)."""
    return next(c.value for c in at.code if c.value.startswith(start))


def test_dataloader_view_prints_the_tutorials_shape_lines_and_names_the_labels(
    real_data, run_store, no_custom
):
    at = _explorer()
    printed = _printed(at, "Feature batch shape")
    assert printed.startswith(
        "Feature batch shape: torch.Size([64, 1, 28, 28])\nLabels batch shape: torch.Size([64])"
    )
    at.number_input(key="explorer_batch").set_value(10).run()
    assert not at.exception
    printed = _printed(at, "Feature batch shape")
    assert printed.startswith(
        "Feature batch shape: torch.Size([10, 1, 28, 28])\nLabels batch shape: torch.Size([10])"
    )
    first, _ = explore.first_batches(fashion_mnist("train"), 10, True, seed=0)
    labels = first[1].tolist()
    table = at.dataframe[0].value  # train_labels, each digit with its class name, as the mosaic places them
    cells = [cell for column in table.columns[1:] for cell in table[column] if cell]
    assert sorted(cells) == sorted(f"{y} {CLASSES[y]}" for y in labels)
    assert list(table[""]) == ["train_labels[0:8]", "train_labels[8:10]"]
    assert "shuffle=True," in _code_with(at, "DataLoader(")


def test_shuffle_gives_each_epoch_a_new_order_and_off_the_same(real_data, run_store, no_custom):
    at = _explorer()
    assert at.toggle(key="explorer_loader_shuffle").value is True
    epochs = _printed(at, "Epoch 1 starts with")
    first, second = explore.first_batches(fashion_mnist("train"), 64, True, seed=0)
    assert epochs == "\n".join(explore.epoch_lines([first, second], CLASSES))
    assert epochs.endswith("The same order in both epochs: False")

    at.toggle(key="explorer_loader_shuffle").set_value(False).run()
    assert not at.exception
    epochs = _printed(at, "Epoch 1 starts with")
    assert epochs.endswith("The same order in both epochs: True")
    labels = load_split("train")[1][:8].tolist()  # the file's order
    assert epochs.startswith("Epoch 1 starts with: " + ", ".join(f"{y} {CLASSES[y]}" for y in labels))
    assert "shuffle=False," in _code_with(at, "DataLoader(")
    assert at.query_params["shuffle"] == "false"


def test_a_custom_dataset_class_reads_real_test_images_written_as_files(real_data, run_store, no_custom):
    at = _explorer()
    code = _code_with(at, "class CustomImageDataset(Dataset):")
    for method in (
        "def __init__(self, annotations_file, img_dir",
        "def __len__(self)",
        "def __getitem__(self, idx)",
    ):
        assert method in code
    at.number_input(key="explorer_files_first").set_value(20).run()
    at.number_input(key="explorer_files_count").set_value(2).run()
    assert not at.exception
    assert "for idx in [20, 21]:" in _code_with(at, "write_png(")
    trip = explore.round_trip(fashion_mnist("test"), [20, 21])
    assert "\n".join(explore.custom_lines(trip.items, CLASSES)) in [c.value for c in at.code]
    assert trip.annotations.rstrip("\n") in [c.value for c in at.code]
    labels = load_split("test")[1]
    captions = [c for image in at.image for c in image.captions]
    assert f"custom_data[1] · {CLASSES[int(labels[21])]}" in captions


def test_the_page_ends_with_the_code_you_would_write_from_its_controls(real_data, run_store, no_custom):
    at = _explorer()
    at.radio(key="explorer_split").set_value("test").run()
    at.number_input(key="explorer_seed").set_value(77).run()
    at.button_group(key="explorer_classes_fashion_test").set_value([1, 8]).run()
    at.number_input(key="explorer_batch").set_value(16).run()
    assert not at.exception
    index = at.selectbox(key="explorer_pick_fashion_test").value
    view = ExplorerView(split="test", classes=(1, 8), seed=77, sample=index, batch_size=16)
    assert at.subheader[-1].value.endswith("The code you would write")
    assert at.code[-1].value == programs.program(view).source().rstrip("\n")  # st.code drops the last newline
    links = next(m.value for m in at.markdown if "makes [sample grid](#samples)" in m.value)
    assert "(#a-custom-dataset)" in links and "(#dataloader-batches)" in links
    assert at.get("download_button")


def test_class_means_and_distribution_are_shown(real_data, run_store, no_custom):
    at = _explorer()
    captions = [c for image in at.image for c in image.captions]
    assert [c for c in captions if c in CLASSES] == list(CLASSES)  # one mean image per class, in order
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    assert "6,000" in charts[0].proto.spec  # every FashionMNIST train class has 6,000 images


def _custom_set(root, name: str, rows: list[tuple[str, int]]) -> None:
    folder = root / name / "images"
    folder.mkdir(parents=True)
    for i, (file, _label) in enumerate(rows):
        mode, size = ("RGB", (20, 16)) if i % 2 else ("L", (28, 28))
        Image.new(mode, size, color=40 * (i + 1) if mode == "L" else (200, 30, 30)).save(folder / file)
    (root / name / "annotations.csv").write_text(
        "file,label\n" + "".join(f"{f},{label}\n" for f, label in rows)
    )


def test_custom_dataset_is_discovered_and_browsed(real_data, run_store, tmp_path, monkeypatch):
    rows = [("a.png", 0), ("b.png", 3), ("c.png", 3), ("d.png", 5)]
    _custom_set(tmp_path / "custom", "mine", rows)
    monkeypatch.setattr(explore, "CUSTOM_ROOT", tmp_path / "custom")
    at = _explorer()
    assert at.radio(key="explorer_source").options == ["FashionMNIST", "mine"]
    at.radio(key="explorer_source").set_value("mine").run()
    assert not at.exception
    grid = _grid(at)
    assert sorted(grid) == [(0, "label 0"), (1, "label 3"), (2, "label 3"), (3, "label 5")]
    assert any("Only 4 samples match" in c.value for c in at.caption)

    at.button_group(key="explorer_classes_custom_mine").set_value([3]).run()
    assert sorted(_grid(at)) == [(1, "label 3"), (2, "label 3")]
    assert any("Your own images (1 found)" in e.label for e in at.expander)


def test_missing_dataset_shows_the_fix_and_how_to_add_images(run_store, tmp_path, monkeypatch):
    monkeypatch.setattr(core.base.paths, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(explore, "CUSTOM_ROOT", tmp_path / "data" / "custom")
    at = _explorer()
    assert any("FashionMNIST is not prepared yet" in e.value and "make data" in e.value for e in at.error)
    assert not _grid(at)
    assert any("No custom dataset found — how to add one" in e.label for e in at.expander)
    assert any("annotations.csv" in m.value for m in at.markdown)


def test_clicking_a_grid_image_opens_it_in_the_inspector(real_data, run_store, no_custom):
    at = _explorer()
    index, text = _grid(at)[5]
    at.button(key=f"explorer_open_{index}").click().run()
    assert not at.exception
    assert at.selectbox(key="explorer_pick_fashion_train").value == index
    assert any(m.value.startswith(f"**Index** {index} · ") and f"({text})" in m.value for m in at.markdown)


def test_the_densest_grid_keeps_class_names_whole(real_data, run_store, no_custom):
    at = _explorer()
    at.segmented_control(key="explorer_grid").set_value(6).run()
    labels = [b.label for b in at.button if b.key and b.key.startswith("explorer_open_")]
    assert len(labels) == 36 and not any("-" in label for label in labels)  # only non-breaking hyphens
    assert set(labels) <= {"T\u2011shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                           "Sneaker", "Bag", "Boot"}  # fmt: skip


def _linked(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def test_a_link_restores_the_view_and_the_view_is_written_back(real_data, run_store, no_custom):
    query = {
        "split": "test", "classes": ["Trouser", "Bag"], "grid": "4", "seed": "77", "batch": "32",
        "shuffle": "false", "files_from": "30", "files": "2",
    }  # fmt: skip
    at = _linked(**query)
    assert not at.exception and not [c for c in at.caption if "From the link" in c.value]
    grid = _grid(at)
    expected = explore.sample_indices(load_split("test")[1], [1, 8], 16, 77)
    assert [i for i, _ in grid] == expected and {t for _, t in grid} <= {"Trouser", "Bag"}
    assert at.number_input(key="explorer_batch").value == 32
    assert at.toggle(key="explorer_loader_shuffle").value is False
    assert at.number_input(key="explorer_files_first").value == 30
    assert at.number_input(key="explorer_files_count").value == 2
    at.number_input(key="explorer_seed").set_value(5).run()
    assert at.query_params["seed"] == "5" and at.query_params["split"] == "test"
    assert at.query_params["classes"] == ["Trouser", "Bag"] and at.query_params["grid"] == "4"


def test_settings_survive_a_visit_to_another_page(real_data, run_store, no_custom):
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run().switch_page(PAGE).run()
    at.radio(key="explorer_split").set_value("test").run()
    at.number_input(key="explorer_seed").set_value(123).run()
    at.segmented_control(key="explorer_grid").set_value(5).run()
    at.number_input(key="explorer_batch").set_value(16).run()
    at.switch_page(str(PROJECT_ROOT / "pages" / "Tensors.py")).run()
    at.run()  # a second run there: Streamlit drops the state of widgets the last run did not draw
    at.query_params.clear()  # as in the browser, where a page link leaves the old page's query behind
    at.switch_page(PAGE).run()
    assert not at.exception
    assert (
        at.radio(key="explorer_split").value == "test" and at.number_input(key="explorer_seed").value == 123
    )
    assert (
        at.segmented_control(key="explorer_grid").value == 5
        and at.number_input(key="explorer_batch").value == 16
    )


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"split": "validation"}, "split 'validation' is not one of train, test."),
        ({"classes": ["Trouser", "Hat"]}, "classes 'Hat' is not one of"),
        ({"grid": "10"}, "grid '10' is not one of 3, 4, 5, 6."),
        ({"seed": "-5"}, "seed -5 is out of range"),
        ({"seed": "9" * 400}, "a value of 400 characters is too long."),
        ({"batch": "0"}, "batch 0 is out of range (1 to 1,024)."),
        ({"sample": "60000"}, "sample 60,000 is out of range"),
        ({"shuffle": "maybe"}, "shuffle 'maybe' is not one of true, false."),
        ({"files": "9"}, "files 9 is out of range (1 to 8)."),
    ],
)
def test_a_bad_link_value_is_refused_with_a_notice(real_data, run_store, no_custom, query, reason):
    at = _linked(**query)
    assert not at.exception and not at.error
    notices = [c.value for c in at.caption if "From the link" in c.value]
    assert len(notices) == 1 and reason in notices[0]
    assert len(_grid(at)) == 9 and at.radio(key="explorer_split").value == "train"
