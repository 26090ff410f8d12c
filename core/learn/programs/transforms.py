"""Transforms' "code you would write": the tutorial's "Transforms" with the page's pipeline and samples."""

from collections.abc import Sequence

from core.data.transforms import Step, pipeline_code
from core.learn.program import Piece, Program, literal

# The page's headings that the pieces make (their anchors, set by the page)
PIPELINE_ANCHOR = "pipeline"
STATS_ANCHOR = "tensor-statistics"
TARGET_ANCHOR = "target-transform"

LOAD_CODE = """training_data = datasets.FashionMNIST(
    root="data",
    train=True,
    download=True,
    transform=transform,
    target_transform=target_transform,
)"""


def program(steps: Sequence[Step], indices: Sequence[int], seed: int) -> Program:
    """The page's pipeline (BadConfig when it cannot be built) on its samples, with its seed."""
    return Program(
        page="transforms",
        summary="Transforms: your pipeline and the one-hot target_transform on FashionMNIST samples.",
        pieces=(
            Piece("Build the transforms", pipeline_code(steps), "pipeline", PIPELINE_ANCHOR),
            Piece("Load the data with them", LOAD_CODE),
            Piece("Transform the samples", samples_code(steps, indices, seed), "statistics", STATS_ANCHOR),
            Piece("The one-hot targets", targets_code(indices), "one-hot vectors", TARGET_ANCHOR),
        ),
    )


def samples_code(steps: Sequence[Step], indices: Sequence[int], seed: int) -> str:
    """Each sample through `training_data[idx]` after one torch.manual_seed, as the page draws them."""
    to_tensor = ""
    if all(name != "ToTensor" for name, _ in steps):
        to_tensor = "    img = transforms.ToTensor()(img)  # no ToTensor above: a PIL image, made a tensor\n"
    return f"""torch.manual_seed({literal(seed)})  # the page's seed: the same random draws
targets = []
for idx in {literal(list(indices))}:
    img, target = training_data[idx]  # transform(image), target_transform(label)
{to_tensor}    print(f"#{{idx}}: shape {{tuple(img.shape)}}, dtype {{img.dtype}}")
    print(f"  min {{img.min():.4f}}, max {{img.max():.4f}}, mean {{img.mean():.4f}}, std {{img.std():.4f}}")
    targets.append(target)"""


def targets_code(indices: Sequence[int]) -> str:
    return f"""for idx, target in zip({literal(list(indices))}, targets):
    y = training_data.targets[idx].item()  # the label as stored
    print(f"y = {{y}}  →  {{target}}")"""
