"""Save & Load's "code you would write": the weights saved and loaded into a new model, eval() against
train(), and the whole model that weights_only=True refuses, on the page's model class and test images."""

from pathlib import Path

from core.data.fashion import PROJECT_ROOT
from core.learn.build_model import UNTRAINED_SEED
from core.learn.program import Piece, Program, literal
from core.learn.save_load import SHOWN_IMAGES, WEIGHTS_FILE, WHOLE_FILE
from core.model.source import DEVICE_LINE, IMPORTS, class_code, class_name

# The page's headings these pieces make (st.subheader(..., anchor=...)).
SAVE_ANCHOR = "save-the-weights"
LOAD_ANCHOR = "load-the-weights"
MODES_ANCHOR = "eval-or-train"
WHOLE_ANCHOR = "the-whole-model"

SUMMARY = "Save and Load the Model: a state_dict out and in, eval() or train(), the whole model refused."


def program(name: str, start: int, options: dict | None = None, checkpoint: Path | None = None) -> Program:
    """The file for model `name` and test images start..start+7: seeded untrained weights, or a run's
    (its model `options`, its `checkpoint` loaded with weights_only=True, as Build Model's file does)."""
    cls = class_name(name)
    indices = list(range(int(start), int(start) + SHOWN_IMAGES))
    return Program(
        page="save_load",
        summary=SUMMARY,
        pieces=(
            Piece("Imports, the device and the test images", _setup(indices), "test images", LOAD_ANCHOR),
            Piece("Define the model's class", class_code(name, options)),
            Piece("Save the model weights", _save(cls, checkpoint), "file and its state_dict", SAVE_ANCHOR),
            Piece("Load them into a new model", _load(cls), "predictions side by side", LOAD_ANCHOR),
            Piece("eval() before inference", _modes(), "eval() against train()", MODES_ANCHOR),
            Piece("Save the whole model", _whole(), "whole-model refusal", WHOLE_ANCHOR),
        ),
    )


def _setup(indices: list[int]) -> str:
    return f"""{IMPORTS}
import os
import pickle

from torchvision import datasets
from torchvision.transforms import ToTensor

{DEVICE_LINE}
test_data = datasets.FashionMNIST(root="data", train=False, download=True, transform=ToTensor())
indices = {literal(indices)}
X = torch.stack([test_data[i][0] for i in indices]).to(device)  # ({len(indices)}, 1, 28, 28)
labels = [test_data[i][1] for i in indices]"""


def _save(cls: str, checkpoint: Path | None) -> str:
    if checkpoint is None:
        seed, load = "the same untrained weights every time", ""
    else:
        seed = "model2 and fresh below get the page's random weights"
        path = literal(_shown(checkpoint))
        load = f"\nmodel.load_state_dict(torch.load({path}, weights_only=True))  # the run's weights"
    return f"""torch.manual_seed({literal(UNTRAINED_SEED)})  # {seed}
model = {cls}().to(device){load}
model.eval()  # for the predictions below (piece 5 tries train mode)

torch.save(model.state_dict(), {WEIGHTS_FILE!r})
print(f"{WEIGHTS_FILE}: {{os.path.getsize({WEIGHTS_FILE!r})}} bytes")
for key, tensor in model.state_dict().items():
    print(key, tuple(tensor.shape))"""


def _shown(path: Path) -> str:
    """The checkpoint's path from the project's folder, where the learner would run the file; else as is."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _load(cls: str) -> str:
    return f"""model2 = {cls}().to(device)  # new random weights, replaced by the saved ones
model2.load_state_dict(torch.load({WEIGHTS_FILE!r}, weights_only=True))
model2.eval()
fresh = {cls}().to(device).eval()  # built the same way, never loaded

with torch.no_grad():
    logits, logits2, logits_fresh = model(X), model2(X), fresh(X)
print("true labels:         ", labels)
print("model:               ", logits.argmax(1).tolist())
print("model2, loaded:      ", logits2.argmax(1).tolist())
print("fresh, never loaded: ", logits_fresh.argmax(1).tolist())
print(f"largest |model(X) - model2(X)|: {{(logits - logits2).abs().max().item():.6f}}")
print(f"largest |model(X) - fresh(X)|: {{(logits - logits_fresh).abs().max().item():.6f}}")"""


def _modes() -> str:
    return f"""# Dropout and BatchNorm act differently in train mode: without model.eval() the answers change.
with torch.no_grad():
    model2.eval()
    evaluated = model2(X)
    torch.manual_seed({literal(UNTRAINED_SEED)})  # the page's Dropout draws
    model2.train()  # train mode left on at test time
    first, second = model2(X), model2(X)
model2.eval()
print("train mode:          ", first.argmax(1).tolist())
print(f"largest |train - eval|: {{(first - evaluated).abs().max().item():.6f}}")
print(f"largest |train - train|: {{(first - second).abs().max().item():.6f}}")"""


def _whole() -> str:
    return f"""torch.save(model, {WHOLE_FILE!r})  # the whole object, pickled: its class by name only
print(f"{WHOLE_FILE}: {{os.path.getsize({WHOLE_FILE!r})}} bytes")
try:
    torch.load({WHOLE_FILE!r}, weights_only=True)
except pickle.UnpicklingError as error:
    refusal = next(line for line in str(error).splitlines() if "Unsupported global" in line)
    print("weights_only=True refused it:", refusal.strip())
# Loading it needs weights_only=False, which runs whatever the pickle says and needs the class defined:
# do that only with a file you saved yourself. model_weights.pth above needs neither."""
