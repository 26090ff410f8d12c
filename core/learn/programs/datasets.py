"""Dataset Explorer's "code you would write": the tutorial's "Datasets & DataLoaders" from the controls."""

from dataclasses import dataclass

from core.data.explore import ANNOTATIONS_NAME, FIRST_LABELS
from core.data.fashion import CLASSES
from core.learn.program import Piece, Program, literal

# The page's headings that the pieces make (their anchors, set by the page)
SAMPLES_ANCHOR = "samples"
CUSTOM_ANCHOR = "a-custom-dataset"
LOADER_ANCHOR = "dataloader-batches"
FOLDER = "my_images"  # where the program writes its few test images


@dataclass(frozen=True)
class ExplorerView:
    """The page's controls, as the code takes them."""

    split: str = "train"  # "train" or "test"
    classes: tuple[int, ...] | None = None  # the grid's class filter; None: all classes
    grid: int = 3  # the grid's side
    seed: int = 0
    sample: int = 0  # the inspected sample
    batch_size: int = 64
    shuffle: bool = True
    custom_first: int = 0  # the test images written as files: custom_first, custom_first + 1, ...
    custom_count: int = 4

    @property
    def dataset(self) -> str:
        return "training_data" if self.split == "train" else "test_data"

    @property
    def loader(self) -> str:
        return "train_dataloader" if self.split == "train" else "test_dataloader"

    @property
    def batch_names(self) -> tuple[str, str]:
        prefix = "train" if self.split == "train" else "test"
        return f"{prefix}_features", f"{prefix}_labels"

    @property
    def custom_indices(self) -> list[int]:
        return list(range(self.custom_first, self.custom_first + self.custom_count))


LOAD_CODE = """import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from torchvision.transforms import ToTensor

training_data = datasets.FashionMNIST(root="data", train=True, download=True, transform=ToTensor())
test_data = datasets.FashionMNIST(root="data", train=False, download=True, transform=ToTensor())"""

CLASS_CODE = """import csv
import os

from torchvision.io import decode_image, write_png


class CustomImageDataset(Dataset):
    def __init__(self, annotations_file, img_dir, transform=None, target_transform=None):
        # The tutorial reads the CSV with pandas (pd.read_csv); the csv module does the same without it.
        with open(annotations_file, newline="") as f:
            rows = list(csv.reader(f))[1:]  # skip the header row: file,label
        self.img_labels = [(name, int(label)) for name, label in rows]
        self.img_dir = img_dir
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self):
        return len(self.img_labels)

    def __getitem__(self, idx):
        img_path = os.path.join(self.img_dir, self.img_labels[idx][0])
        image = decode_image(img_path)  # uint8 (C, H, W), as stored in the file
        label = self.img_labels[idx][1]
        if self.transform:
            image = self.transform(image)
        if self.target_transform:
            label = self.target_transform(label)
        return image, label"""


def program(view: ExplorerView) -> Program:
    return Program(
        page="explorer",
        summary="Datasets & DataLoaders: FashionMNIST, its samples, a Dataset of your own files, batches.",
        pieces=(
            Piece("Load a dataset", LOAD_CODE),
            Piece("Iterate and visualize the dataset", grid_code(view), "sample grid", SAMPLES_ANCHOR),
            Piece("Index one sample", sample_code(view), "inspector", SAMPLES_ANCHOR),
            Piece("Create a custom Dataset for your files", CLASS_CODE, "CustomImageDataset", CUSTOM_ANCHOR),
            Piece("Write a few images as files, read them back", files_code(view), "files", CUSTOM_ANCHOR),
            Piece("Iterate through the DataLoader", loader_code(view), "DataLoader batch", LOADER_ANCHOR),
            Piece("The next epoch", epoch_code(view), "two epochs", LOADER_ANCHOR),
        ),
    )


def labels_map_code() -> str:
    entries = "".join(f'    {label}: "{name}",\n' for label, name in enumerate(CLASSES))  # the tutorial's
    return f"labels_map = {{\n{entries}}}"


def grid_code(view: ExplorerView) -> str:
    """The grid's samples, drawn the way core.data.explore.sample_indices draws them."""
    n, data = view.grid * view.grid, view.dataset
    if view.classes is None:
        pool = f"pool = torch.arange(len({data}))"
    else:
        chosen = literal(list(view.classes))
        pool = (
            f"keep = torch.isin({data}.targets, torch.tensor({chosen}))  # only the classes chosen\n"
            f"pool = torch.arange(len({data}))[keep]"
        )
    return f"""{labels_map_code()}
{pool}
generator = torch.Generator().manual_seed({literal(view.seed)})
sample_idx = pool[torch.randperm(len(pool), generator=generator)[:{literal(n)}]].tolist()
for sample in sample_idx:
    img, label = {data}[sample]
    # The tutorial draws img.squeeze() in a {view.grid}x{view.grid} matplotlib figure; here each is named.
    print(f"#{{sample}} · {{labels_map[label]}}")"""


def sample_code(view: ExplorerView) -> str:
    return f"""img, label = {view.dataset}[{literal(view.sample)}]  # a float (1, 28, 28) tensor and an int
print(f"img.shape = {{img.shape}}")
print(f"img.dtype = {{img.dtype}}")
print(f"values {{img.min():.3f}} to {{img.max():.3f}}, mean {{img.mean():.3f}}")
print(f"label = {{label}} ({{labels_map[label]}})")"""


def files_code(view: ExplorerView) -> str:
    return f"""img_dir = "{FOLDER}"
annotations_file = os.path.join(img_dir, "{ANNOTATIONS_NAME}")
os.makedirs(img_dir, exist_ok=True)
rows = [("file", "label")]
for idx in {literal(view.custom_indices)}:
    img, label = test_data[idx]
    name = f"test_{{idx}}.png"
    write_png((img * 255).round().to(torch.uint8), os.path.join(img_dir, name))  # back to 0-255
    rows.append((name, label))
with open(annotations_file, "w", newline="") as f:
    csv.writer(f, lineterminator="\\n").writerows(rows)

custom_data = CustomImageDataset(annotations_file, img_dir)
print(f"len(custom_data) = {{len(custom_data)}}")
for i in range(len(custom_data)):
    image, label = custom_data[i]
    print(f"custom_data[{{i}}]: {{image.shape}} {{image.dtype}}, label {{label}} ({{labels_map[label]}})")"""


def loader_code(view: ExplorerView) -> str:
    x, y = view.batch_names
    return f"""{view.loader} = DataLoader(
    {view.dataset},
    batch_size={literal(view.batch_size)},
    shuffle={literal(view.shuffle)},
    generator=torch.Generator().manual_seed({literal(view.seed)}),  # the same order as the page's
)
{x}, {y} = next(iter({view.loader}))  # iter() starts an epoch
print(f"Feature batch shape: {{{x}.size()}}")
print(f"Labels batch shape: {{{y}.size()}}")


def first_labels(labels):
    return ", ".join(f"{{y}} {{labels_map[y]}}" for y in labels[:{literal(FIRST_LABELS)}].tolist())


print("Epoch 1 starts with:", first_labels({y}))"""


def epoch_code(view: ExplorerView) -> str:
    x, y = view.batch_names
    return f"""next_features, next_labels = next(iter({view.loader}))  # iter() again: the next epoch
print("Epoch 2 starts with:", first_labels(next_labels))
same = torch.equal({y}, next_labels) and torch.equal({x}, next_features)
print(f"The same order in both epochs: {{same}}")"""
