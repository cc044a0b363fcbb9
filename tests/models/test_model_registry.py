"""create_model / available_models: names, argument validation, and seed pairing across norms."""

from __future__ import annotations

import pytest
import torch

from normbench.models import available_models, create_model


def test_available_models_lists_every_model():
    assert available_models() == ["cnn1d", "cnn2d", "lenet5", "mlp", "rnn", "stacked_lstm", "transformer"]


def test_unknown_model_lists_available_names(identity_norm):
    with pytest.raises(ValueError, match=r"unknown model 'resnet'; available models: cnn1d, cnn2d, lenet5, mlp, rnn, "
                                         r"stacked_lstm, transformer"):
        create_model("resnet", norm=identity_norm, input_shape=(1, 8, 8), num_classes=10)


@pytest.mark.parametrize("shape", [(), (0, 8, 8), (1, -8, 8), (1.5, 8, 8), (True, 8, 8)])
def test_bad_input_shape_is_rejected(identity_norm, shape):
    with pytest.raises(ValueError, match="input_shape"):
        create_model("mlp", norm=identity_norm, input_shape=shape, num_classes=10)


@pytest.mark.parametrize("num_classes", [0, -1, 2.0, True])
def test_bad_num_classes_is_rejected(identity_norm, num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        create_model("mlp", norm=identity_norm, input_shape=(1, 8, 8), num_classes=num_classes)


def test_norm_must_be_a_factory_of_modules():
    with pytest.raises(TypeError, match="norm must be a factory"):
        create_model("mlp", norm="batch", input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        create_model("mlp", norm=lambda c: None, input_shape=(1, 8, 8), num_classes=10)


def _non_norm_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if ".norm." not in k}


@pytest.mark.parametrize(
    "name, options",
    [
        ("mlp", {}),
        ("mlp", {"preset": "ioffe2015"}),
        ("mlp", {"preset": "keras_dense"}),
        ("mlp", {"placement": "after", "dropout": 0.5}),
        ("cnn2d", {}),
        ("cnn2d", {"channels": [8, 16, 16], "placement": "after"}),
    ],
)
def test_same_seed_gives_same_weights_whatever_the_norm(
    name, options, batch_norm, identity_norm, random_affine_norm
):
    states = []
    for factory in (batch_norm, identity_norm, random_affine_norm):
        torch.manual_seed(1234)
        model = create_model(name, norm=factory, input_shape=(1, 8, 8), num_classes=10, **options)
        states.append(_non_norm_state(model))
        # the RNG stream after construction must also agree, or data order would differ by norm
        states[-1]["_next_draw"] = torch.rand(3)
    reference = states[0]
    assert len(reference) > 2
    for state in states[1:]:
        assert state.keys() == reference.keys()
        for key, value in reference.items():
            assert torch.equal(state[key], value), key


def test_different_seeds_give_different_weights(identity_norm):
    torch.manual_seed(0)
    a = create_model("mlp", norm=identity_norm, input_shape=(1, 8, 8), num_classes=10)
    torch.manual_seed(1)
    b = create_model("mlp", norm=identity_norm, input_shape=(1, 8, 8), num_classes=10)
    assert not torch.equal(a.head.weight, b.head.weight)


@pytest.mark.parametrize(
    "name, options, expected",
    [
        ("mlp", {"widths": [5, 7, 9]}, [5, 7, 9]),
        ("mlp", {"preset": "ioffe2015"}, [100, 100, 100]),
        ("cnn2d", {"channels": [4, 8, 6]}, [4, 8, 6]),
    ],
)
def test_norm_factory_called_once_per_slot_in_layer_order(recording_norm, name, options, expected):
    create_model(name, norm=recording_norm, input_shape=(1, 8, 8), num_classes=10, **options)
    assert recording_norm.calls == expected
