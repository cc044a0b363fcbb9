"""Installed plugins (entry points): listed with their distribution, loaded on first use, never overriding a built-in."""

from __future__ import annotations

import sys

import pytest
from plugin_support import forget_all_plugins, tiny_suite, write_distribution
from typer.testing import CliRunner

from normbench import api
from normbench.catalog import catalog, catalog_problems
from normbench.cli import app
from normbench.data.registry import DATASETS
from normbench.models.registry import MODELS
from normbench.norms.registry import NORMS
from normbench.plugins import PluginError
from normbench.suite import SuiteError

P = "nb_test_plugins"


@pytest.fixture
def installed(plugins, tmp_path, monkeypatch):
    """Install fake distributions: `install(name, version, {group: {entry: target}})`."""
    def install(name, version, entry_points):
        write_distribution(tmp_path / "site", name, version, entry_points)
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        forget_all_plugins()

    return install


def test_entry_points_join_the_builtins_listed_with_their_distribution_and_load_on_first_use(installed):
    installed("nb-fake-plugin", "1.2.3", {
        "normbench.norms": {"center": f"{P}:MaskedCenterNorm"},
        "normbench.models": {"tiny_conv": f"{P}:build_net"},
        "normbench.datasets": {"small_digits": f"{P}:load_small_digits"},
    })
    assert NORMS.available()[-1] == "center"  # after the built-ins, in registration order
    assert MODELS.available() == sorted(MODELS.available()) and "tiny_conv" in MODELS.available()
    assert f"center  (plugin: nb-fake-plugin 1.2.3, {P}:MaskedCenterNorm)" in catalog("norms")
    assert f"small_digits  (plugin: nb-fake-plugin 1.2.3, {P}:load_small_digits)" in catalog("datasets")
    assert P not in sys.modules  # listing imports nothing
    provenance = NORMS.entry("CENTER").provenance  # norm names match in any case
    assert (provenance.source, provenance.distribution, provenance.version) == ("entry point", "nb-fake-plugin", "1.2.3")
    assert provenance.reference == f"center = {P}:MaskedCenterNorm"
    assert NORMS.entry("center").source == "entry point of nb-fake-plugin 1.2.3"
    assert api.validate(tiny_suite(dataset="small_digits", models=["tiny_conv"], norms=["center"])).summary == \
        "valid, 1 runs"


def test_a_name_clashing_with_a_builtin_is_an_error_at_listing_and_validation(installed):
    installed("nb-clash", "0.1", {"normbench.norms": {"batch": f"{P}:MaskedCenterNorm", "bn": f"{P}:MaskedCenterNorm"}})
    problems = catalog_problems("norms")
    assert len(problems) == 2
    assert ("norm 'batch': entry point 'batch' = 'nb_test_plugins:MaskedCenterNorm' of nb-clash 0.1 (group "
            "normbench.norms) clashes with the built-in norm 'batch'; a plugin cannot replace a built-in") in problems[0]
    assert "clashes with the built-in alias 'bn' of norm 'batch'" in problems[1]
    with pytest.raises(PluginError, match="clashes with the built-in norm 'batch'"):
        NORMS.canonical("batch")
    with pytest.raises(SuiteError, match=r"<dict>: field `norms\[0\]\.name`: norm 'batch': entry point"):
        api.validate(tiny_suite(norms=["batch"]))
    assert api.validate(tiny_suite(norms=["layer"])).summary == "valid, 1 runs"  # other names are unaffected
    result = CliRunner().invoke(app, ["list", "norms"])
    assert result.exit_code == 2
    assert "batch  (alias: bn)" in result.stdout and "clashes with the built-in norm 'batch'" in result.stderr


def test_two_plugins_declaring_one_name_are_an_error_naming_both(installed):
    installed("nb-first", "1.0", {"normbench.models": {"net": f"{P}:build_net"}})
    installed("nb-second", "2.0", {"normbench.models": {"net": f"{P}:build_fails_at_four"}})
    with pytest.raises(PluginError, match=r"model 'net' is declared by two installed plugins \(nb-\w+ \d.0 and "
                                          r"nb-\w+ \d.0\); uninstall one, or name the one you mean by its import path"):
        MODELS.canonical("net")


def test_an_entry_point_that_cannot_load_breaks_only_suites_that_name_it(installed):
    installed("nb-broken", "0.0.1", {"normbench.datasets": {"lost": "nb_not_installed.data:load"}})
    assert "lost" in DATASETS.available()
    with pytest.raises(SuiteError, match=r"field `dataset\.name`: dataset 'lost' \(entry point "
                                         r"'nb_not_installed.data:load' of nb-broken 0.0.1\): cannot load it: "
                                         r"ModuleNotFoundError: No module named 'nb_not_installed'"):
        api.validate(tiny_suite(dataset="lost"))
    assert api.validate(tiny_suite()).summary == "valid, 1 runs"
