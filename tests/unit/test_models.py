import pytest
import torch

from core.model.networks import MODELS, build_model, flops_per_sample, model_options

TUTORIAL_KEYS = [
    "linear_relu_stack.0.weight",
    "linear_relu_stack.0.bias",
    "linear_relu_stack.2.weight",
    "linear_relu_stack.2.bias",
    "linear_relu_stack.4.weight",
    "linear_relu_stack.4.bias",
]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_a_batch_to_ten_logits(name):
    model = build_model(name)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_mlp_has_the_tutorial_parameter_names_and_sizes():
    state = build_model("mlp").state_dict()
    assert list(state) == TUTORIAL_KEYS
    assert state["linear_relu_stack.0.weight"].shape == (512, 784)
    assert state["linear_relu_stack.4.weight"].shape == (10, 512)


def test_mlp_dropout_and_width_keep_the_tutorial_keys():
    model = build_model("mlp", hidden=128, dropout=0.3)
    assert list(model.state_dict()) == TUTORIAL_KEYS
    assert model.state_dict()["linear_relu_stack.2.weight"].shape == (128, 128)
    model.train()
    x = torch.rand(4, 1, 28, 28)
    assert not torch.equal(model(x), model(x))  # dropout is active in train mode
    model.eval()
    assert torch.equal(model(x), model(x))


def test_flops_count_the_matrix_multiplies():
    assert flops_per_sample(build_model("mlp")) == 2 * (784 * 512 + 512 * 512 + 512 * 10)


def test_unknown_model_or_option_names_the_choices():
    with pytest.raises(ValueError, match="choose one of"):
        build_model("resnet")
    with pytest.raises(ValueError, match="no option"):
        build_model("mlp", channels=3)
    assert model_options("mlp", hidden=64) == {"hidden": 64, "dropout": 0.0}


def test_a_model_too_big_for_a_checkpoint_is_refused_before_training():
    from core.base.errors import BadConfig
    from core.model.networks import MAX_PARAMS, check_options
    from core.training.config import TrainConfig

    with pytest.raises(BadConfig, match="more than a checkpoint can hold"):
        TrainConfig(hidden=4096)  # 20 M parameters: 80 MB of weights
    with pytest.raises(ValueError, match="more than a checkpoint can hold"):
        check_options("cnn", {"channels": 256, "hidden": 2048})
    from core.model.checkpoint import MAX_CHECKPOINT_BYTES

    assert MAX_PARAMS * 4 < MAX_CHECKPOINT_BYTES


def test_the_largest_mlp_the_form_allows_saves_and_loads_back(tmp_path):
    from core.model.checkpoint import load_checkpoint, save_checkpoint
    from core.model.networks import MAX_PARAMS, parameter_count
    from core.training.config import TrainConfig

    hidden = max(h for h in range(3000, 4097, 16) if parameter_count("mlp", (("hidden", h),)) <= MAX_PARAMS)
    config = TrainConfig(hidden=hidden)  # the form's TrainConfig accepts it
    options = config.model_options()
    path = save_checkpoint(
        build_model("mlp", **options), tmp_path / "model.pth", model_name="mlp", model_options=options
    )
    assert load_checkpoint(path).model_options["hidden"] == hidden
