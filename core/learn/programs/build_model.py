"""Build Model's "code you would write": the tutorial's "Build the Neural Network" from the controls."""

from pathlib import Path

from core.learn import build_model as bm
from core.learn.layers import walk_code
from core.learn.program import Piece, Program

# The page's headings that the pieces make (their anchors, set by the page)
PREDICTION_ANCHOR = "one-image-through-the-model"
MODEL_ANCHOR = "the-model"
LAYERS_ANCHOR = "model-layers"

DATA_CODE = """from torchvision import datasets
from torchvision.transforms import ToTensor

test_data = datasets.FashionMNIST(root="data", train=False, download=True, transform=ToTensor())"""


def program(
    name: str,
    options: dict | None,
    checkpoint: Path | None,
    index: int,
    walk: tuple[int, int, int, int],
) -> Program:
    """`walk`: the Model Layers controls (first image, images, out_features, seed)."""
    setup, define, create = _model_parts(name, options, checkpoint)
    return Program(
        page="build_model",
        summary="Build the Neural Network: the class, an instance on the device, one image through it.",
        pieces=(
            Piece("Get a device for training", setup),
            Piece("Define the class", define, "Structure tab: the class's lines", MODEL_ANCHOR),
            Piece("Create an instance on the device, print it", create, "print(model)", MODEL_ANCHOR),
            Piece("Load the data", DATA_CODE),
            Piece("One image through the model", _predict_code(index), "prediction", PREDICTION_ANCHOR),
            Piece("Model layers, one at a time", walk_code(*walk), "Model layers tab", LAYERS_ANCHOR),
            Piece("Model parameters", bm.PARAMETERS_CODE, "Parameters tab", MODEL_ANCHOR),
        ),
    )


def _model_parts(name: str, options: dict | None, checkpoint: Path | None) -> tuple[str, str, str]:
    """model_code split where the tutorial's headings split it: device, class, instance."""
    code = bm.model_code(name, options, checkpoint)
    head, _, rest = code.partition("\n\n\n")
    define, _, create = rest.partition("\n\n\n")
    return head, define, create


def _predict_code(index: int) -> str:
    return f"""image, label = test_data[{int(index)!r}]  # image: (1, 28, 28), values in [0, 1]
X = image.unsqueeze(0).to(device)  # (1, 1, 28, 28): a batch of one
print(f"Label: {{label}}")

model.eval()  # what the page does too: batch norm and dropout, if any, in their testing mode
with torch.no_grad():
    logits = model(X)  # call the model, never model.forward(X): hooks run around forward
pred_probab = nn.Softmax(dim=1)(logits)
y_pred = pred_probab.argmax(1)
print(f"Predicted class: {{y_pred}}")
print(pred_probab)"""
