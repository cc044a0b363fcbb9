"""Import paths in the registries: resolution, options from signatures, provenance, and the errors."""

from __future__ import annotations

import hashlib

import pytest
from plugin_support import SAMPLES

from normbench.data.registry import DATASETS
from normbench.models.registry import MODELS
from normbench.norms import create_norm
from normbench.norms.registry import NORMS
from normbench.plugins import PluginError


def test_an_import_path_resolves_to_its_object_with_options_from_the_signature(plugins):
    from nb_test_plugins import MaskedCenterNorm, build_net

    assert MODELS.get(f"{plugins}:build_net") is build_net
    assert MODELS.options(f"{plugins}:build_net") == {"width": 8}  # norm, input_shape, num_classes are the protocol
    # Norm names are case-insensitive, import paths never are.
    assert NORMS.canonical(f" {plugins}:MaskedCenterNorm ") == f"{plugins}:MaskedCenterNorm"
    assert isinstance(create_norm(f"{plugins}:MaskedCenterNorm", 4), MaskedCenterNorm)
    with pytest.raises(ValueError, match=r"norm 'nb_test_plugins:MaskedCenterNorm': unknown option 'epz'; "
                                         r"allowed options: eps"):
        create_norm(f"{plugins}:MaskedCenterNorm", 4, epz=1)


def test_import_paths_are_resolved_not_listed(plugins):
    MODELS.canonical(f"{plugins}:build_net")
    assert f"{plugins}:build_net" not in MODELS.available()


def test_provenance_of_a_module_outside_any_distribution_is_its_file_hash(plugins):
    path = SAMPLES / "nb_test_plugins.py"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    provenance = DATASETS.provenance(f"{plugins}:load_small_digits")
    assert provenance.source == "import path" and provenance.module == "nb_test_plugins"
    assert provenance.file == str(path.resolve()) and provenance.root == str(path.resolve())
    assert provenance.distribution == "" and provenance.version == f"sha256:{digest[:12]}"
    assert provenance.source_sha256 == digest
    assert DATASETS.provenance("digits") is None and DATASETS.provenance("no_such_thing") is None


def test_provenance_of_a_distribution_module_is_the_distribution_version():
    # yaml is an installed distribution (PyYAML): its version, not a file hash.
    from importlib.metadata import version

    provenance = MODELS.provenance("yaml:safe_load")
    assert (provenance.distribution, provenance.version) == ("PyYAML", version("PyYAML"))
    MODELS.forget_plugins()


@pytest.mark.parametrize(("path", "message"), [
    ("nb_missing_package.nets:build", r"model 'nb_missing_package.nets:build': cannot import module "
                                      r"'nb_missing_package.nets': ModuleNotFoundError: No module named 'nb_missing_package'"),
    ("nb_test_plugins:build_nothing", r"model 'nb_test_plugins:build_nothing': module 'nb_test_plugins' \(.*"
                                      r"nb_test_plugins.py\) has no attribute 'build_nothing'"),
    ("nb_test_plugins:NOT_CALLABLE", r"model 'nb_test_plugins:NOT_CALLABLE' is a int, not a class or function"),
    ("nb_test_plugins:build net", r"model 'nb_test_plugins:build net' is not a valid import path: write "
                                  r"package.module:attribute"),
])
def test_import_failures_are_plugin_errors_naming_the_path(plugins, path, message):
    with pytest.raises(PluginError, match=message):
        MODELS.canonical(path)


def test_an_exception_while_importing_is_reported_with_its_type(plugins, tmp_path, monkeypatch):
    (tmp_path / "nb_broken_plugin.py").write_text("import math\nraise RuntimeError('needs a GPU driver')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="cannot import module 'nb_broken_plugin': RuntimeError: needs a GPU driver"):
        NORMS.canonical("nb_broken_plugin:Norm")


def test_a_norm_given_as_a_factory_function_validates_like_a_class(plugins):
    from plugin_support import tiny_suite

    from normbench import api

    plan = api.validate(tiny_suite(models=[f"{plugins}:build_net"], norms=[f"{plugins}:center_norm"]))
    assert [s.norm for s in plan.specs] == [f"{plugins}:center_norm"]
    assert plan.specs[0].plugin_provenance["norm"]["reference"] == f"{plugins}:center_norm"
