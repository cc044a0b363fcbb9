"""normbench.options: every check's accepted and refused values, and the one error format."""

from __future__ import annotations

import math

import pytest

from normbench import options as opt
from normbench.options import Owner

OWNER = Owner("model", "toy")


def _refusal(check, value, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        check(OWNER, "x", value, *args, **kwargs)
    return str(err.value)


def test_owner_reads_as_kind_and_quoted_name():
    assert str(Owner("norm", "batch")) == "norm 'batch'"


def test_error_format_names_owner_option_value_and_what_is_allowed():
    message = str(opt.option_error(OWNER, "depth", 0, "a positive integer"))
    assert message == "model 'toy': option 'depth' must be a positive integer; got 0"
    choice = str(opt.option_error(OWNER, "act", "elu", "one of relu, tanh"))
    assert choice == "model 'toy': option 'act' must be one of relu, tanh; got 'elu'"


@pytest.mark.parametrize("value", [True, False])
def test_check_bool_accepts_bools(value):
    assert opt.check_bool(OWNER, "x", value) is value


@pytest.mark.parametrize("value", [0, 1, "true", None])
def test_check_bool_refuses_everything_else(value):
    assert "must be true or false" in _refusal(opt.check_bool, value)


def test_check_choice_lists_choices_in_the_order_given():
    assert opt.check_choice(OWNER, "x", "b", ("b", "a")) == "b"
    message = _refusal(opt.check_choice, "c", ("b", "a"))
    assert "option 'x' must be one of b, a; got 'c'" in message
    assert "must be one of b, a" in _refusal(opt.check_choice, ["b"], ("b", "a"))  # not a string


@pytest.mark.parametrize("value,minimum,maximum,expected", [(3, 3, None, 3), (5, 1, 5, 5), (0, 0, 0, 0)])
def test_check_int_accepts_integers_in_range(value, minimum, maximum, expected):
    result = opt.check_int(OWNER, "x", value, minimum, maximum)
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    "value,minimum,maximum,requirement",
    [(2, 3, None, "an integer >= 3"), (6, 1, 5, "an integer [1, 5]"), (True, 0, None, "an integer >= 0"),
     (2.0, 1, None, "an integer >= 1"), ("2", 1, None, "an integer >= 1")],
)
def test_check_int_refuses_out_of_range_and_non_integers(value, minimum, maximum, requirement):
    assert f"must be {requirement}; got {value!r}" in _refusal(opt.check_int, value, minimum, maximum)


def test_check_positive_int():
    assert opt.check_positive_int(OWNER, "x", 1) == 1
    for bad in (0, -2, 1.5, True, None):
        assert "must be a positive integer" in _refusal(opt.check_positive_int, bad)


def test_check_positive_ints_returns_a_tuple():
    assert opt.check_positive_ints(OWNER, "x", [3, 1]) == (3, 1)
    for bad in ([], [2, 0], [True], 4, "12", None):
        assert "must be a non-empty list of positive integers" in _refusal(opt.check_positive_ints, bad)


def test_check_int_per_layer_repeats_a_single_value():
    assert opt.check_int_per_layer(OWNER, "x", 3, 2) == (3, 3)
    assert opt.check_int_per_layer(OWNER, "x", [0, 2], 2, minimum=0) == (0, 2)
    assert "a positive integer or a list of 2 such integers" in _refusal(opt.check_int_per_layer, [1, 2, 3], 2)
    assert "an integer >= 0 or a list of 2" in _refusal(opt.check_int_per_layer, -1, 2, minimum=0)
    assert "or a list of 2" in _refusal(opt.check_int_per_layer, "3", 2)


def test_check_seed_spans_numpy_legacy_seeds():
    assert opt.check_seed(OWNER, "x", 0) == 0 and opt.check_seed(OWNER, "x", 2**32 - 1) == 2**32 - 1
    for bad in (-1, 2**32, 1.0, True):
        assert "must be an integer in [0, 2**32)" in _refusal(opt.check_seed, bad)


@pytest.mark.parametrize(
    "bounds,accepted,refused,requirement",
    [
        ({"low": 0.0, "low_open": True}, [1e-9, 3], [0, -1.0, math.inf, math.nan], "a number in (0, inf]"),
        ({"low": 0.0, "high": 1.0, "high_open": True}, [0, 0.5], [1.0, -0.1], "a number in [0, 1)"),
        ({"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}, [0.5], [0, 1], "a number in (0, 1)"),
        ({"low": 1.0}, [1, 2.5], [0.99, "2", True], "a number in [1, inf]"),
    ],
)
def test_check_number_interval(bounds, accepted, refused, requirement):
    for value in accepted:
        result = opt.check_number(OWNER, "x", value, **bounds)
        assert result == value and type(result) is float
    for value in refused:
        assert f"must be {requirement}" in _refusal(opt.check_number, value, **bounds)


def test_check_positive_number():
    assert opt.check_positive_number(OWNER, "x", 2) == 2.0
    for bad in (0, -1, math.inf, math.nan, True, "1"):
        assert "must be a positive number" in _refusal(opt.check_positive_number, bad)


def test_auto_variants():
    assert opt.check_auto_or_bool(OWNER, "x", "auto") == "auto"
    assert opt.check_auto_or_bool(OWNER, "x", False) is False
    assert "must be auto, true or false" in _refusal(opt.check_auto_or_bool, 1)
    assert opt.check_auto_or_positive_number(OWNER, "x", "auto") == "auto"
    assert opt.check_auto_or_positive_number(OWNER, "x", 3) == 3.0
    assert "must be auto or a positive number" in _refusal(opt.check_auto_or_positive_number, 0)


def test_optional_passes_none_through_and_checks_the_rest():
    assert opt.optional(opt.check_int, OWNER, "x", None, 1) is None
    assert opt.optional(opt.check_int, OWNER, "x", 4, 1) == 4
    assert "must be an integer >= 1" in _refusal(lambda *a: opt.optional(opt.check_int, *a, 1), 0)


def test_resolve_options_fills_defaults_and_names_unknown_options():
    assert opt.resolve_options(OWNER, {"b": 5}, {"a": 1, "b": 2}) == {"a": 1, "b": 5}
    with pytest.raises(ValueError) as err:
        opt.resolve_options(OWNER, {"z": 1, "c": 2}, {"b": 1, "a": 2})
    assert str(err.value) == "model 'toy': unknown options 'c', 'z'; allowed options: a, b"


def test_unknown_option_of_an_owner_without_options():
    message = str(opt.unknown_options_error(Owner("norm", "none"), ["eps"], []))
    assert message == "norm 'none': unknown option 'eps'; allowed options: none (this norm takes no options)"


def test_divisors():
    assert opt.divisors(12) == [1, 2, 3, 4, 6, 12]
    assert opt.divisors(1) == [1]
