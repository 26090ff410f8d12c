"""Optimization's "code you would write": the tutorial's "Optimizing Model Parameters" from the controls."""

from core.learn.program import Piece, Program, literal
from core.model.source import DEVICE_LINE, class_code

# The page's headings that the pieces make (their anchors, set by the page)
HYPERPARAMETERS_ANCHOR = "hyperparameters"
LOSS_ANCHOR = "the-loss-function"
OPTIMIZER_ANCHOR = "the-optimizer"
STEPS_ANCHOR = "one-step-at-a-time"
TEST_ANCHOR = "train-mode-at-test-time"
SEED = 0  # the page's untrained models are built after torch.manual_seed(0): the same initial weights

IMPORTS = """import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import ToTensor"""

DATA = """
training_data = datasets.FashionMNIST(root="data", train=True, download=True, transform=ToTensor())
test_data = datasets.FashionMNIST(root="data", train=False, download=True, transform=ToTensor())

train_dataloader = DataLoader(training_data, batch_size=batch_size)
test_dataloader = DataLoader(test_data, batch_size=batch_size)"""

TRAIN_LOOP = """def train_loop(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    # Set the model to training mode - important for batch normalization and dropout layers
    # Unnecessary in this situation but added for best practices
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        if max_batches is not None and batch >= max_batches:
            break  # a quick try: the rest of the epoch is skipped
        X, y = X.to(device), y.to(device)
        # Compute prediction and loss
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        if batch % 100 == 0:
            loss, current = loss.item(), batch * batch_size + len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")"""

TEST_LOOP = """def test_loop(dataloader, model, loss_fn):
    # Set the model to evaluation mode - important for batch normalization and dropout layers
    # Unnecessary in this situation but added for best practices
    model.eval()
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0

    # Evaluating the model with torch.no_grad() ensures that no gradients are computed during test mode
    # also serves to reduce unnecessary gradient computations and memory usage for tensors with
    # requires_grad=True
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()

    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \\n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \\n")"""

EPOCHS = """for t in range(epochs):
    print(f"Epoch {t+1}\\n-------------------------------")
    train_loop(train_dataloader, model, loss_fn, optimizer)
    test_loop(test_dataloader, model, loss_fn)
print("Done!")"""

LOSS = """# Initialize the loss function
loss_fn = nn.CrossEntropyLoss()"""

OPTIMIZER = """# SGD, as the tutorial; torch.optim also has Adam, RMSprop, AdamW, ...
optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)"""


def program(learning_rate: float, batch_size: int, epochs: int, max_batches: int | None = None) -> Program:
    """The tutorial's full implementation with the page's hyperparameters. `max_batches` (None: every
    batch) ends each training epoch early, for a quick try; the test loop always sees all 10,000 images."""
    return Program(
        page="optimization",
        summary="Optimizing Model Parameters: hyperparameters, loss, optimizer, train_loop and test_loop.",
        pieces=(
            Piece("Imports", IMPORTS),
            Piece(
                "Hyperparameters",
                _hyperparameters(learning_rate, batch_size, epochs, max_batches),
                "hyperparameters",
                HYPERPARAMETERS_ANCHOR,
            ),
            Piece("Load the data", DATA),
            Piece("Define the model on the device", _model(), "first printed loss", HYPERPARAMETERS_ANCHOR),
            Piece("The loss function", LOSS, "loss function", LOSS_ANCHOR),
            Piece("The optimizer", OPTIMIZER, "optimizer", OPTIMIZER_ANCHOR),
            Piece("The train loop", TRAIN_LOOP, "one step at a time", STEPS_ANCHOR),
            Piece("The test loop: eval() and no_grad()", TEST_LOOP, "train mode at test time", TEST_ANCHOR),
            Piece("Full implementation: the epochs", EPOCHS),
        ),
    )


def _hyperparameters(learning_rate: float, batch_size: int, epochs: int, max_batches: int | None) -> str:
    return f"""learning_rate = {literal(float(learning_rate))}
batch_size = {literal(int(batch_size))}
epochs = {literal(int(epochs))}
max_batches = {literal(None if max_batches is None else int(max_batches))}  # None: every batch of an epoch"""


def _model() -> str:
    return f"""{DEVICE_LINE}
print(f"Using {{device}} device")


{class_code("mlp")}


torch.manual_seed({literal(SEED)})  # the page's untrained model: the same initial weights
model = NeuralNetwork().to(device)"""
