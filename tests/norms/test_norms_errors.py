"""Registry names and every error path: unknown names/options, bad values, undefined statistics."""

from __future__ import annotations

import pytest
import torch

from normbench.norms import ALIASES, NormUndefinedError, available, canonical_name, create_norm, norm_options

EXPECTED = ["none", "batch", "layer", "instance", "group", "batch_layer", "batch_renorm", "rms", "weight", "full"]


def test_available_lists_canonical_names_in_order():
    assert available() == EXPECTED


@pytest.mark.parametrize("alias,canonical", [("bn", "batch"), ("ln", "layer"), ("in", "instance"),
                                             ("gn", "group"), ("bln", "batch_layer"), ("BN", "batch"),
                                             (" Batch_Layer ", "batch_layer"), ("rms", "rms"),
                                             ("wn", "weight"), ("FN", "full")])
def test_canonical_name_resolves_aliases(alias, canonical):
    assert canonical_name(alias) == canonical
    assert type(create_norm(alias, 8, **({"num_groups": 2} if canonical == "group" else {}))) is type(
        create_norm(canonical, 8, **({"num_groups": 2} if canonical == "group" else {}))
    )


def test_unknown_name_lists_names_and_aliases():
    with pytest.raises(ValueError) as err:
        create_norm("batchnorm", 8)
    message = str(err.value)
    assert "'batchnorm'" in message
    for name in EXPECTED:
        assert name in message
    for alias in ALIASES:
        assert f"{alias} -> " in message


def test_unknown_option_names_it_and_the_allowed_ones():
    with pytest.raises(ValueError) as err:
        create_norm("batch", 8, momentun=0.2)
    message = str(err.value)
    assert "'momentun'" in message
    assert norm_options("batch")
    for option in norm_options("batch"):
        assert option in message
    with pytest.raises(ValueError, match="takes no options"):
        create_norm("none", 8, eps=1e-5)


@pytest.mark.parametrize(
    "name,options,fragment",
    [
        ("batch", {"eps": -1.0}, "option 'eps' must be a number in (0, inf]; got -1.0"),
        ("batch", {"momentum": 1.5}, "option 'momentum' must be a number in (0, 1]; got 1.5"),
        ("batch", {"momentum": 1.0, "convention": "keras"}, "option 'momentum' must be a number in [0, 1); got 1.0"),
        ("batch", {"convention": "tf"}, "option 'convention' must be one of torch, keras; got 'tf'"),
        ("batch", {"affine": "yes"}, "option 'affine' must be true or false; got 'yes'"),
        ("batch", {"ghost_batch_size": 0}, "option 'ghost_batch_size' must be an integer >= 1; got 0"),
        ("batch", {"track_running_stats": 1}, "option 'track_running_stats' must be true or false; got 1"),
        ("layer", {"per_position": "no"}, "option 'per_position' must be true or false; got 'no'"),
        ("group", {"num_groups": 0}, "option 'num_groups' must be an integer >= 1; got 0"),
        ("batch_layer", {"momentum": 0.0}, "option 'momentum' must be"),
        ("batch_layer", {"pooled": None}, "option 'pooled' must be true or false; got None"),
        ("batch_renorm", {"r_max": 0.5}, "option 'r_max' must be a number in [1, inf]; got 0.5"),
        ("batch_renorm", {"r_max_steps": 10}, "option 'r_max_steps' must be an integer >= warmup_steps (5000); got 10"),
        ("rms", {"bias": True, "affine": False}, "option 'bias' must be false when affine is false"),
        ("instance", {"eps": float("nan")}, "option 'eps' must be a number in (0, inf]; got nan"),
        ("layer", {"eps": "1e-5"}, "option 'eps' must be a number in (0, inf]; got '1e-5'"),
        ("batch_layer", {"offset": 0.5}, "option 'offset' must be a number in [0, 0.5); got 0.5"),
        ("batch_layer", {"offset": -1e-4}, "option 'offset' must be a number in [0, 0.5); got -0.0001"),
        ("batch_layer", {"divide_by_sqrt_channels": 0}, "option 'divide_by_sqrt_channels' must be true or false; got 0"),
        ("batch", {"inference_weight": 1.5}, "option 'inference_weight' must be a number in [0, 1]; got 1.5"),
        ("batch", {"inference_weight": 0.2, "track_running_stats": False},
         "option 'inference_weight' must be null when track_running_stats is false"),
        ("weight", {"mean_only_bn": "yes"}, "option 'mean_only_bn' must be true or false; got 'yes'"),
        ("weight", {"data_dependent_init": 1}, "option 'data_dependent_init' must be true or false; got 1"),
        ("weight", {"momentum": 0.0}, "option 'momentum' must be a number in (0, 1]; got 0.0"),
        ("full", {"momentum": 0.0}, "option 'momentum' must be a number in (0, 1]; got 0.0"),
        ("full", {"eps": 0.0}, "option 'eps' must be a number in (0, inf]; got 0.0"),
        ("full", {"gradient": "sgd"}, "option 'gradient' must be one of compositional, estimate; got 'sgd'"),
    ],
)
def test_invalid_option_value_names_option_and_allowed_values(name, options, fragment):
    with pytest.raises(ValueError) as err:
        create_norm(name, 8, **options)
    assert fragment in str(err.value)
    assert f"norm {name!r}" in str(err.value)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_num_features_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="num_features"):
        create_norm("layer", bad)


def test_group_divisibility_error_names_valid_group_counts():
    with pytest.raises(ValueError) as err:
        create_norm("group", 12, num_groups=5)
    assert "num_groups=5 does not divide 12 channels" in str(err.value)
    assert "allowed num_groups for 12 channels: 1, 2, 3, 4, 6, 12" in str(err.value)
    # the default of 32 groups fails the same way on narrow layers, at construction
    with pytest.raises(ValueError) as err:
        create_norm("gn", 48)
    assert "num_groups=32 does not divide 48 channels" in str(err.value)
    assert "allowed num_groups for 48 channels: 1, 2, 3, 4, 6, 8, 12, 16, 24, 48" in str(err.value)
    with pytest.raises(ValueError) as err:
        create_norm("group", 12, channels_per_group=5)
    assert "channels_per_group=5 does not divide 12 channels" in str(err.value)
    assert "allowed channels_per_group for 12 channels: 1, 2, 3, 4, 6, 12" in str(err.value)
    with pytest.raises(ValueError, match="not both"):
        create_norm("group", 12, num_groups=3, channels_per_group=4)
    assert create_norm("group", 64).num_groups == 32
    assert create_norm("group", 12, channels_per_group=4).num_groups == 3


def test_ghost_batch_that_does_not_divide_the_batch_is_a_clear_error():
    bn = create_norm("batch", 4, ghost_batch_size=4)
    with pytest.raises(ValueError, match="ghost_batch_size=4 must divide the batch size, got a batch of 6"):
        bn(torch.randn(6, 4))
    bn(torch.randn(8, 4))  # multiples are fine
    bn.eval()
    bn(torch.randn(6, 4))  # eval uses running estimates: no ghost batches


def test_instance_norm_on_feature_vectors_is_undefined():
    with pytest.raises(NormUndefinedError, match=r"no spatial axis") as err:
        create_norm("instance", 4)(torch.randn(5, 4))
    assert isinstance(err.value, ValueError)
    assert "(5, 4)" in str(err.value)


@pytest.mark.parametrize("name,options", [("batch", {}), ("bn", {}), ("batch_renorm", {}),
                                          ("weight", {"mean_only_bn": True})])
def test_batch_statistics_of_one_value_per_channel_are_undefined(name, options):
    layer = create_norm(name, 4, **options)
    with pytest.raises(NormUndefinedError, match="more than one value per channel") as err:
        layer(torch.randn(1, 4))
    assert "(1, 4)" in str(err.value)
    with pytest.raises(NormUndefinedError):
        layer(torch.randn(1, 4, 1, 1))
    # a mask that leaves one valid entry is the same situation
    mask = torch.zeros(2, 3, dtype=torch.bool)
    mask[0, 1] = True
    with pytest.raises(NormUndefinedError):
        layer(torch.randn(2, 4, 3), mask)
    layer(torch.randn(1, 4, 2, 2))  # one sample, four positions: defined
    layer.eval()
    layer(torch.randn(1, 4))  # eval uses the running estimates: defined


def test_ghost_batches_each_need_two_values():
    bn = create_norm("batch", 4, ghost_batch_size=1)
    with pytest.raises(NormUndefinedError, match="each \\(ghost\\) batch"):
        bn(torch.randn(4, 4))


def test_untracked_batch_norm_in_eval_still_needs_two_values():
    bn = create_norm("batch", 4, track_running_stats=False).eval()
    with pytest.raises(NormUndefinedError):
        bn(torch.randn(1, 4))


def test_batch_layer_norm_is_defined_for_a_batch_of_one():
    """BLN was designed for batch size 1: x_b is exactly 0, so training is defined (docs/norms.md)."""
    bln = create_norm("bln", 4)
    y = bln(torch.randn(1, 4))
    assert torch.isfinite(y).all()


@pytest.mark.parametrize(
    "x,mask,fragment",
    [
        (torch.randn(4, 5), None, "built for 4 channels (axis 1), got shape (4, 5)"),
        (torch.randn(4), None, "input must be (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W)"),
        (torch.randn(2, 4, 1, 1, 1, 1), None, "got shape (2, 4, 1, 1, 1, 1)"),
        (torch.ones(3, 4, dtype=torch.long), None, "floating point"),
        (torch.randn(3, 4, 5), torch.ones(3, 4, dtype=torch.bool), "mask must have shape (N, *spatial) = (3, 5)"),
        (torch.randn(3, 4, 5), torch.ones(3, 5), "mask must be a bool tensor"),
        (torch.randn(0, 4), None, "empty batch"),
    ],
)
def test_bad_input_or_mask_is_rejected(x, mask, fragment):
    with pytest.raises(ValueError) as err:
        create_norm("layer", 4)(x, mask)
    assert fragment in str(err.value)
    assert not isinstance(err.value, NormUndefinedError)


def test_batch_layer_rejects_a_change_of_layout():
    bln = create_norm("bln", 4)
    bln(torch.randn(3, 4, 5))
    with pytest.raises(ValueError, match="trained on inputs with 1 spatial axes, got 2"):
        bln(torch.randn(3, 4, 5, 2))
