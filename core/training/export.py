"""Any TrainConfig as one standalone Python script in the tutorial's own style (torch + torchvision only).

The script uses torchvision's FashionMNIST Dataset and a DataLoader, the model class written out,
train/test loops as in the tutorial, the optimizer and schedule, the seed, the augmentation as
torchvision transforms, and ends with `torch.save(model.state_dict(), "model.pth")`: that file loads in
this dashboard and in the tutorial's class (the MLP's keys are the tutorial's).
"""

from core.base import notebooks
from core.training.config import TrainConfig

_MLP = """
class NeuralNetwork(nn.Module):
    def __init__(self, hidden={hidden}, dropout={dropout}):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, hidden),
            activation(dropout),
            nn.Linear(hidden, hidden),
            activation(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def activation(dropout):
    # Dropout rides with the ReLU and has no weights, so the state_dict keys stay the tutorial's.
    return nn.ReLU() if dropout <= 0 else nn.Sequential(nn.ReLU(), nn.Dropout(dropout))


model = NeuralNetwork().to(device)
"""

_CNN = """
class SmallCNN(nn.Module):
    def __init__(self, channels={channels}, hidden={hidden}, dropout={dropout}):
        super().__init__()
        c1, c2 = channels, channels * 2
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


model = SmallCNN().to(device)
"""

_LOOPS = """
def train_loop(dataloader, model, loss_fn, optimizer, scheduler, max_batches):
    size = len(dataloader.dataset)
    if max_batches:
        size = min(size, max_batches * dataloader.batch_size)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        if max_batches and batch >= max_batches:
            break
        X, y = X.to(device), y.to(device)
        # Compute prediction and loss
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if scheduler is not None:
            scheduler.step()

        if batch % 100 == 0:
            loss, current = loss.item(), batch * dataloader.batch_size + len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test_loop(dataloader, model, loss_fn):
    model.eval()
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \\n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \\n")
    return correct
"""


def _header(config: TrainConfig, source: str) -> str:
    limit = config.limit_batches
    # Nothing read from a file or a name enters the script but as a Python literal (repr): a run folder
    # named with quotes and newlines stays a string here instead of becoming code.
    return f'''"""FashionMNIST training, exported from FashionMNIST Studio (see EXPORTED_FROM below).
{_processes_note(config)}
Needs only torch and torchvision:  python {{this file}} [--epochs N] [--max-batches N]
Writes model.pth, loadable with `model.load_state_dict(torch.load("model.pth", weights_only=True))`.
"""

import argparse
import math

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

EXPORTED_FROM = {source!r}

parser = argparse.ArgumentParser(description="Train on FashionMNIST and save model.pth")
parser.add_argument("--epochs", type=int, default={config.epochs!r})
parser.add_argument("--max-batches", type=int, default={limit!r}, help="training batches per epoch")
args = parser.parse_args()

torch.manual_seed({config.seed!r})
device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
print(f"Using {{device}} device")
'''


def _processes_note(config: TrainConfig) -> str:
    """A config for several processes (DistributedDataParallel) is exported as a one-process script: the
    processes average their gradients into the whole batch's (core.training.train scales each share's
    loss), so one process on whole batches does the same arithmetic. The script's docstring says so."""
    if config.processes <= 1:
        return ""
    lines = [
        f"The Studio trains this in {config.processes} processes (DistributedDataParallel), each taking",
        f"its share of every batch of {config.batch_size}, their gradients averaged into the whole batch's;",
        "this script trains on whole batches in one process, the same arithmetic",
    ]
    if config.model == "cnn":  # BatchNorm normalizes each process's share there (no SyncBatchNorm)
        lines[-1] += " but for batch norm,"
        lines.append("which normalizes each process's share there and whole batches here")
    return "\n" + "\n".join(lines) + ".\n"


def _transforms(config: TrainConfig) -> str:
    aug = config.augment
    before: list[str] = []
    if aug.hflip:
        before.append(f"transforms.RandomHorizontalFlip(p={aug.hflip!r})")
    if aug.rotate or aug.translate or aug.scale:
        translate = f"({aug.translate!r}, {aug.translate!r})" if aug.translate else "None"
        scale = f"({1 - aug.scale!r}, {1 + aug.scale!r})" if aug.scale else "None"
        before.append(
            f"transforms.RandomAffine(degrees={aug.rotate!r}, translate={translate}, scale={scale})"
        )
    after = []
    if aug.erase:
        erasing = f"transforms.RandomErasing(p={aug.erase!r}, scale=(0.02, 0.2), ratio=(0.3, 3.3), value=0)"
        after.append(erasing)
    steps = [*before, "transforms.ToTensor()", *after]
    body = "".join(f"    {step},\n" for step in steps)
    return f"""
# Augmentation (training images only), then the tutorial's ToTensor.
train_transform = transforms.Compose([
{body}])
training_data = datasets.FashionMNIST(root="data", train=True, download=True, transform=train_transform)
test_data = datasets.FashionMNIST(root="data", train=False, download=True, transform=transforms.ToTensor())
train_dataloader = DataLoader(training_data, batch_size={config.batch_size!r}, shuffle=True)
test_dataloader = DataLoader(test_data, batch_size=1000)
"""


def _model(config: TrainConfig) -> str:
    options = config.model_options()
    template = _MLP if config.model == "mlp" else _CNN
    return template.format(**{key: repr(value) for key, value in options.items()})


def _optimizer(config: TrainConfig) -> str:
    if config.optimizer == "sgd":
        made = (
            f"torch.optim.SGD(model.parameters(), lr={config.lr!r}, momentum={config.momentum!r}, "
            f"weight_decay={config.weight_decay!r})"
        )
    else:
        name = "Adam" if config.optimizer == "adam" else "AdamW"
        made = (
            f"torch.optim.{name}(model.parameters(), lr={config.lr!r}, weight_decay={config.weight_decay!r})"
        )
    lines = ["", "loss_fn = nn.CrossEntropyLoss()", f"optimizer = {made}"]
    if config.lr_schedule == "cosine":
        lines += [
            "steps_per_epoch = min(len(train_dataloader), args.max_batches or len(train_dataloader))",
            "total_steps = steps_per_epoch * args.epochs",
            "# Cosine decay from the learning rate to 0 over the whole run, one step per batch.",
            "scheduler = torch.optim.lr_scheduler.LambdaLR(",
            "    optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))",
            ")",
        ]
    else:
        lines.append("scheduler = None")
    return "\n".join(lines) + "\n"


_TRAIN = """
for t in range(args.epochs):
    print(f"Epoch {t + 1}\\n-------------------------------")
    train_loop(train_dataloader, model, loss_fn, optimizer, scheduler, args.max_batches)
    test_loop(test_dataloader, model, loss_fn)
print("Done!")
"""
_SAVE = """
torch.save(model.state_dict(), "model.pth")
print("Saved PyTorch Model State to model.pth")
"""
_MAIN = _TRAIN + _SAVE


def script(config: TrainConfig, source: str = "the Train form's settings") -> str:
    """The whole script for `config`; `source` names where it came from (a run id, the form)."""
    return "".join(
        [_header(config, source), _transforms(config), _model(config), _optimizer(config), _LOOPS, _MAIN]
    )


def file_name(source_id: str | None) -> str:
    return f"train_{source_id}.py" if source_id else "train_fashionmnist.py"


_NOTEBOOK_IMPORTS = """
import math

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

EXPORTED_FROM = {source}

torch.manual_seed({seed})
device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
print(f"Using {{device}} device")
"""


def _cell(code: str) -> notebooks.Cell:
    """A code cell of the script's code: the notebook's parameters cell stands for its command line."""
    return notebooks.code(code.replace("args.epochs", "epochs").replace("args.max_batches", "max_batches"))


def notebook(config: TrainConfig, source: str = "the Train form's settings") -> str:
    """The script as a Jupyter notebook in the tutorial's shape: its sections in markdown, the same code in
    cells, and first a parameters cell (epochs, a batch cap) to make a run quick."""
    md = notebooks.markdown
    note = " ".join(_processes_note(config).split())
    note = f"\n\n{note}" if note else ""
    return notebooks.notebook([
        md("# FashionMNIST training\n\nExported from FashionMNIST Studio (`EXPORTED_FROM` below). The "
           "quickstart of PyTorch's *Learn the Basics* with this run's settings: plain PyTorch and "
           "torchvision. It ends by saving `model.pth`, which loads with "
           '`model.load_state_dict(torch.load("model.pth", weights_only=True))`.' + note),
        md("## Parameters\n\nFewer epochs, or a cap on the training batches per epoch (`None`: all), make "
           "it quick."),
        notebooks.code(f"epochs = {config.epochs!r}\nmax_batches = {config.limit_batches!r}",
                       notebooks.PARAMETERS_TAG),
        md("## Imports and the device"),
        notebooks.code(_NOTEBOOK_IMPORTS.format(source=repr(source), seed=repr(config.seed))),
        md("## Working with data\n\nFashionMNIST through torchvision, its training images augmented as "
           "the run's were, in DataLoaders."),
        _cell(_transforms(config)),
        md("## Creating Models"),
        _cell(_model(config)),
        md("## Optimizing the Model Parameters\n\nThe loss function and the optimizer, then the training "
           "and test loops."),
        _cell(_optimizer(config)),
        _cell(_LOOPS),
        md("## Training"),
        _cell(_TRAIN),
        md("## Saving Models"),
        _cell(_SAVE),
    ])  # fmt: skip


def notebook_name(source_id: str | None) -> str:
    return f"train_{source_id}.ipynb" if source_id else "train_fashionmnist.ipynb"
