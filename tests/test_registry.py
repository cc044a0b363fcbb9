"""normbench.registry: names, aliases, listing order, options from signatures, and the lookup errors."""

from __future__ import annotations

import pytest

from normbench.registry import Registry, signature_options

_SENTINEL = object()


class Widget:
    """A registered class: ``size`` is the protocol argument, the rest are options."""

    def __init__(self, size, *, colour="red", weight=1.5, flag=_SENTINEL):
        self.size, self.colour, self.weight = size, colour, weight


def make_widget(*, colour="blue"):
    return Widget(1, colour=colour)


def open_builder(*, size, **options):
    return (size, options)


@pytest.fixture
def widgets() -> Registry:
    registry = Registry("widget", reserved=("size",))
    registry.register("plain", Widget, aliases=("p",))
    registry.register("made", make_widget)
    return registry


def test_available_is_sorted_or_in_registration_order(widgets):
    assert widgets.available() == ["made", "plain"]
    ordered = Registry("widget", listing="registered")
    ordered.register("z", make_widget)
    ordered.register("a", make_widget)
    assert ordered.available() == ["z", "a"]


def test_aliases_resolve_to_the_canonical_name(widgets):
    assert widgets.canonical("p") == "plain"
    assert widgets.get("p") is Widget
    assert widgets.aliases() == {"p": "plain"}
    assert "p" in widgets and "nope" not in widgets and 3 not in widgets


def test_unknown_name_lists_names_and_aliases(widgets):
    with pytest.raises(ValueError) as err:
        widgets.get("gadget")
    assert str(err.value) == "unknown widget 'gadget'; available widgets: made, plain; aliases: p -> plain"
    with pytest.raises(ValueError, match=r"widget name must be a string, got 3; available widgets"):
        widgets.canonical(3)


def test_names_label_and_case(widgets):
    loose = Registry("widget", ignore_case=True, names_label="available")
    loose.register("plain", Widget, aliases=("p",))
    assert loose.canonical(" PLAIN ") == "plain" and loose.canonical("P") == "plain"
    with pytest.raises(ValueError, match=r"^unknown widget 'x'; available: plain; aliases: p -> plain$"):
        loose.canonical("x")
    with pytest.raises(ValueError, match="unknown widget 'PLAIN'"):
        widgets.canonical("PLAIN")  # exact names unless ignore_case
    with pytest.raises(ValueError, match="lower case"):
        loose.register("Mixed", Widget)


def test_a_name_or_alias_cannot_be_registered_twice(widgets):
    with pytest.raises(ValueError, match=r"widget 'plain' is already registered \(by builtin\)"):
        widgets.register("plain", make_widget, source="entry point")
    with pytest.raises(ValueError, match="widget 'p' is already registered"):
        widgets.register("other", make_widget, aliases=("p",))
    assert widgets.get("plain") is Widget  # never overridden


def test_options_come_from_the_signature(widgets):
    # the reserved protocol argument is not an option; a sentinel default reads as None
    assert widgets.options("plain") == {"colour": "red", "weight": 1.5, "flag": None}
    assert widgets.options("made") == {"colour": "blue"}
    assert signature_options(open_builder, reserved=("size",)) is None
    assert widgets.entry("p").source == "builtin"


def test_explicit_options_for_an_object_taking_keyword_arguments():
    registry = Registry("builder", reserved=("size",))
    registry.register("open", open_builder)
    registry.register("listed", open_builder, options={"depth": 2})
    assert registry.options("open") is None
    assert registry.create("open", {"anything": 1}, size=3) == (3, {"anything": 1})  # the object checks its own
    assert registry.create("listed", {"depth": 5}, size=3) == (3, {"depth": 5})
    with pytest.raises(ValueError) as err:
        registry.create("listed", {"width": 5}, size=3)
    assert str(err.value) == "builder 'listed': unknown option 'width'; allowed options: depth"


def test_create_checks_options_then_calls_with_protocol_arguments(widgets):
    widget = widgets.create("p", {"colour": "green"}, 4)
    assert (widget.size, widget.colour) == (4, "green")
    with pytest.raises(ValueError) as err:
        widgets.create("plain", {"color": "green", "wieght": 2}, 4)
    assert str(err.value) == (
        "widget 'plain': unknown options 'color', 'wieght'; allowed options: colour, flag, weight"
    )
    assert str(widgets.owner("p")) == "widget 'plain'"
