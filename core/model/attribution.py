"""Which pixels mattered: attribution maps over the 28x28 input, by plain autograd and by Captum.

Every map is (28, 28) float, positive where raising the pixel raises what is explained.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from core.base.errors import StudioError

OCCLUSION_WINDOW = 4  # pixels: a patch the size of a button or a strap
OCCLUSION_STRIDE = 2
IG_STEPS = 32  # Integrated Gradients' path steps: all in one batch, so one forward and one backward


@dataclass(frozen=True)
class Method:
    name: str
    meaning: str  # one sentence on how to read the map


METHODS = {
    "gradient": Method(
        "Input gradient (autograd)",
        "How much the class's score would change if one pixel got a little brighter: the gradient "
        "PyTorch computes for the input, as for any weight.",
    ),
    "integrated_gradients": Method(
        "Integrated Gradients (Captum)",
        "Each pixel's share of the score, summed along the way from a black image to this one: the "
        "shares add up to how much the score rose over the black image.",
    ),
    "occlusion": Method(
        "Occlusion (Captum)",
        f"How much the score drops when a {OCCLUSION_WINDOW}x{OCCLUSION_WINDOW} patch around the pixel "
        "is blacked out: no gradients, just the model asked again with parts hidden.",
    ),
}


def _check(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """One image as (1, 1, 28, 28) float on the model's device."""
    if x.shape[-2:] != (28, 28) or x.numel() != 784:
        raise StudioError(f"attribution needs one 28x28 image, not a tensor of shape {tuple(x.shape)}")
    if not 0 <= target < 10:
        raise StudioError(f"class {target} is not one of FashionMNIST's 0-9")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    return x.reshape(1, 1, 28, 28).float().detach().to(device)


def input_gradient(model: nn.Module, x: torch.Tensor, target: int, *, of_loss: bool = False) -> torch.Tensor:
    """d(score of `target`)/d(pixels), or d(cross-entropy loss against `target`)/d(pixels).

    torch.autograd.grad asks for the input's gradient only, so the model's own .grad stay untouched
    (the model may be shared by other sessions)."""
    x = _check(model, x, target).requires_grad_()
    model.eval()
    logits = model(x)  # (1, 10)
    value = F.cross_entropy(logits, torch.tensor([target])) if of_loss else logits[0, target]
    (grad,) = torch.autograd.grad(value, x)
    return grad[0, 0].cpu()  # (28, 28)


def attribute(model: nn.Module, x: torch.Tensor, target: int, method: str) -> torch.Tensor:
    """One of METHODS for the class `target`: a (28, 28) map."""
    if method == "gradient":
        return input_gradient(model, x, target)
    from captum.attr import IntegratedGradients, Occlusion  # imported when first asked: ~1 s

    x = _check(model, x, target)
    model.eval()
    if method == "integrated_gradients":
        maps = IntegratedGradients(model).attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=IG_STEPS, internal_batch_size=IG_STEPS
        )
    elif method == "occlusion":
        window, stride = (1, OCCLUSION_WINDOW, OCCLUSION_WINDOW), (1, OCCLUSION_STRIDE, OCCLUSION_STRIDE)
        maps = Occlusion(model).attribute(
            x, sliding_window_shapes=window, strides=stride, target=target, baselines=0.0,
            perturbations_per_eval=256,
        )  # fmt: skip
    else:
        raise StudioError(f"unknown attribution method {method!r}: choose one of {', '.join(METHODS)}")
    return maps.detach()[0, 0].cpu()


RAISES = torch.tensor([217.0, 72.0, 15.0])  # the theme's orange: the pixel raises the score
LOWERS = torch.tensor([31.0, 111.0, 235.0])  # blue: it lowers it


def overlay(image: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """The image in dimmed gray with the map painted over it: (28, 28, 3) uint8.

    Colour strength is |heat| over the map's largest |value|, so each map uses its full range."""
    gray = image.reshape(28, 28).float().clamp(0, 1).mul(0.55 * 255)  # dimmed: the colours stand out
    base = gray.unsqueeze(-1).expand(28, 28, 3)
    scale = heat.abs().max()
    strength = (heat.abs() / scale if scale > 0 else torch.zeros_like(heat)).unsqueeze(-1)  # (28, 28, 1)
    colour = torch.where(heat.unsqueeze(-1) >= 0, RAISES, LOWERS)  # (28, 28, 3)
    return (base * (1 - strength) + colour * strength).round().clamp(0, 255).to(torch.uint8)
