"""Suite schema: field errors name file, field and allowed values; overrides; expansion."""

import pytest
import yaml

from normbench.suite import SuiteError, apply_override, expand, load_suite, validate_suite

BASE = {
    "name": "t", "dataset": "digits", "models": ["mlp"], "norms": ["bn", "ln"], "batch_sizes": [4, 8],
    "seeds": 2, "steps": 5, "optimizer": {"name": "sgd", "lr": 0.1},
}


def write(tmp_path, data, name="s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def error_of(raw):
    with pytest.raises(SuiteError) as info:
        validate_suite(raw, source="f.yaml")
    return str(info.value)


def test_valid_suite_defaults():
    suite = validate_suite(dict(BASE))
    assert suite.seeds == [0, 1]
    assert suite.devices == ["cpu"]
    assert suite.eval_every == 50
    assert suite.norms[0].name == "bn" and suite.norms[0].options == {}


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"batch_sizes": [0, 4]}, "batch_sizes", "positive"),
        ({"batch_sizes": [4, 4]}, "batch_sizes", "distinct"),
        ({"seeds": 0}, "seeds", "positive"),
        ({"optimizer": {"name": "rmsprop", "lr": 0.1}}, "optimizer.name", "'sgd' or 'adam'"),
        ({"optimizer": {"lr": 0}}, "optimizer.lr", "must be positive"),
        ({"optimizer": {"lr": [0.1, 0.1]}}, "optimizer.lr", "distinct"),
        ({"devices": ["tpu"]}, "devices", "allowed: cpu, cuda"),
        ({"epochs": 2}, "", "exactly one"),
        ({"colour": "red"}, "colour", "allowed here: name, description"),
        ({"norms": [{"name": "gn", "opts": {}}]}, "norms[0].opts", "allowed here: name, options, label"),
        ({"name": "../escape"}, "name", "pattern"),
    ],
)
def test_schema_errors_name_file_and_field(change, field, words):
    message = error_of({**BASE, **change})
    assert message.startswith("f.yaml: field `")
    assert f"`{field}`" in message
    assert words in message


def test_missing_field():
    raw = dict(BASE)
    del raw["models"]
    assert "f.yaml: field `models`: required field is missing" in error_of(raw)


def test_yaml_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "name: t\nmodels: [mlp\n")
    with pytest.raises(SuiteError, match=r"s\.yaml: invalid YAML: .* line \d+"):
        load_suite(path)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "absent.yaml")
    with pytest.raises(SuiteError, match="must be a YAML mapping"):
        load_suite(write(tmp_path, "- a\n- b\n"))


def test_yaml_is_data_only(tmp_path):
    path = write(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(SuiteError, match="invalid YAML"):
        load_suite(path)


def test_overrides_parse_yaml_values():
    raw = dict(BASE)
    apply_override(raw, "seeds=5")
    apply_override(raw, "batch_sizes=[2,64]")
    apply_override(raw, "optimizer.lr=0.01")
    apply_override(raw, "epochs=3")
    suite = validate_suite(raw)
    assert suite.seeds == [0, 1, 2, 3, 4]
    assert suite.batch_sizes == [2, 64]
    assert suite.optimizer.lr == 0.01
    assert suite.epochs == 3 and suite.steps is None


@pytest.mark.parametrize(
    "override, words",
    [("seeds", "expected key=value"), ("bogus=1", "unknown suite field 'bogus'"),
     ("batch_sizes=[1,", "not valid YAML"), ("1x=2", "not a field path"), ("norms.x=1", "only optimizer")],
)
def test_bad_overrides(override, words):
    with pytest.raises(SuiteError, match=words):
        apply_override(dict(BASE), override)


def test_override_type_error_is_a_field_error(tmp_path):
    path = write(tmp_path, BASE)
    with pytest.raises(SuiteError, match=r"field `batch_sizes\[0\]`"):
        load_suite(path, ["batch_sizes=[a]"])


def test_expand_product_and_stable_ids():
    suite = validate_suite(dict(BASE))
    canon = {"bn": "batch", "ln": "layer"}.__getitem__
    specs = expand(suite, canonical_norm=canon, resolve_device=lambda d: d)
    assert len(specs) == 1 * 2 * 2 * 2
    assert {s.norm for s in specs} == {"batch", "layer"}
    again = expand(validate_suite(dict(BASE)), canonical_norm=canon, resolve_device=lambda d: d)
    assert [s.run_id for s in specs] == [s.run_id for s in again]
    assert len({s.run_id for s in specs}) == len(specs)


def test_norm_labels_distinguish_options():
    raw = {**BASE, "norms": [{"name": "gn", "options": {"num_groups": 4}}, {"name": "gn", "options": {"num_groups": 2}}]}
    specs = expand(validate_suite(raw), canonical_norm=lambda n: "group", resolve_device=lambda d: d)
    assert {s.norm_label for s in specs} == {"group(num_groups=4)", "group(num_groups=2)"}


def test_duplicate_runs_rejected():
    raw = {**BASE, "norms": ["bn", "batch"]}
    with pytest.raises(SuiteError, match="same run twice"):
        expand(validate_suite(raw), canonical_norm=lambda n: "batch", resolve_device=lambda d: d)


def test_lr_scaling_rules():
    def canon(n):
        return n
    linear = validate_suite({**BASE, "batch_sizes": [4, 64], "lr_scaling": "linear", "reference_batch_size": 64,
                             "optimizer": {"lr": 0.05}})
    lrs = {s.batch_size: s.lr for s in expand(linear, canonical_norm=canon, resolve_device=lambda d: d)}
    assert lrs == {4: pytest.approx(0.05 * 4 / 64), 64: pytest.approx(0.05)}
    sqrt = validate_suite({**BASE, "batch_sizes": [16], "lr_scaling": "sqrt", "reference_batch_size": 64,
                           "optimizer": {"lr": 0.08}})
    (spec, *_) = expand(sqrt, canonical_norm=canon, resolve_device=lambda d: d)
    assert spec.lr == pytest.approx(0.04) and spec.base_lr == 0.08 and spec.lr_scaling == "sqrt"
    assert "reference_batch_size" in error_of({**BASE, "lr_scaling": "linear"})


def test_samples_budget_and_probes():
    suite = validate_suite({**{k: v for k, v in BASE.items() if k != "steps"}, "samples": 1000,
                            "probes": {"percentiles": {"unit": 2}, "grad_norms": True}})
    (spec, *_) = expand(suite, canonical_norm=lambda n: n, resolve_device=lambda d: d)
    assert spec.samples == 1000 and spec.steps is None
    assert spec.probe_kwargs == {"percentiles": {"layer": -1, "unit": 2}, "grad_norms": True}
    assert "exactly one training budget" in error_of({**BASE, "samples": 10})
    assert "probes.bogus" in error_of({**BASE, "probes": {"bogus": True}})


def test_sweeps_over_datasets_learning_rates_and_labelled_models():
    raw = {**BASE, "dataset": ["digits", {"name": "blobs", "options": {"n_features": 4}}],
           "models": [{"name": "mlp", "label": "narrow", "options": {"widths": [8]}}, "mlp"],
           "optimizer": {"lr": [0.01, 0.1]}, "seeds": 1, "norms": ["bn"], "batch_sizes": [4]}
    specs = expand(validate_suite(raw), canonical_norm=lambda n: "batch", resolve_device=lambda d: d)
    assert len(specs) == 2 * 2 * 2
    assert {(s.dataset, s.model_label, s.lr) for s in specs} == {
        (d, m, lr) for d in ("digits", "blobs") for m in ("narrow", "") for lr in (0.01, 0.1)}
    with pytest.raises(SuiteError, match="is a list in this suite"):
        apply_override(dict(raw), "dataset.split_seed=3")


def test_models_restricted_to_datasets():
    raw = {**BASE, "dataset": ["digits", "mnist1d"], "norms": ["bn"], "seeds": 1, "batch_sizes": [4],
           "models": [{"name": "cnn2d", "datasets": ["digits"]}, {"name": "cnn1d", "datasets": ["mnist1d"]}]}
    specs = expand(validate_suite(raw), canonical_norm=lambda n: "batch", resolve_device=lambda d: d)
    assert sorted((s.dataset, s.model) for s in specs) == [("digits", "cnn2d"), ("mnist1d", "cnn1d")]
    raw["models"][0]["datasets"] = ["cifar10"]
    assert "does not declare" in error_of(raw)


def test_models_restricted_to_norms_by_label_or_name():
    raw = {**BASE, "norms": ["none", "batch", {"name": "layer", "label": "LN"}], "seeds": 1, "batch_sizes": [4],
           "models": [{"name": "rnn", "label": "in cell", "norms": ["none", "batch"]},
                      {"name": "stacked_lstm", "norms": ["LN"]}, "mlp"]}
    specs = expand(validate_suite(raw), canonical_norm=lambda n: n, resolve_device=lambda d: d)
    assert sorted((s.model, s.norm) for s in specs) == [
        ("mlp", "batch"), ("mlp", "layer"), ("mlp", "none"), ("rnn", "batch"), ("rnn", "none"), ("stacked_lstm", "layer")]
    raw["models"][1]["norms"] = ["layer_norm"]
    assert "models[1].norms names ['layer_norm'], which no norm of the suite has" in error_of(raw)


def test_unknown_field_in_a_probe_setting_lists_that_settings_fields():
    message = error_of({**BASE, "probes": {"percentiles": {"unit": 1, "colour": "red"}}})
    assert "colour`: unknown field; allowed here: layer, unit" in message


def test_the_kind_field_picks_the_suite_kind():
    from normbench.suite import kind_of

    assert kind_of({"kind": "throughput"}).name == "throughput"
    assert kind_of(dict(BASE)).name == "training"
    # anything else is read as a training suite, whose schema then names the problem
    assert kind_of({"kind": ["throughput"]}).name == kind_of("- a list").name == "training"
    assert "field `kind`: Input should be 'training'" in error_of({**BASE, "kind": "timing"})


@pytest.mark.parametrize(
    "batching, words",
    [
        ("sorted", "must be iid, fixed (the same batches in the same order every epoch), {order: fixed, samples: S}"),
        ("sorted", "{classes_per_batch: k} with k a positive integer, or a list of those; got 'sorted'"),
        ({"order": "fixed", "samples": 0}, "got {'order': 'fixed', 'samples': 0}"),
        ({"order": "random"}, "got {'order': 'random'}"),
        ({"classes_per_batch": 0}, "got {'classes_per_batch': 0}"),
        ({"classes": 2}, "got {'classes': 2}"),
        (["iid", "iid"], "entries must be distinct"),
        ({"classes_per_batch": 5}, "classes_per_batch=5 exceeds batch size 4"),
    ],
)
def test_batching_errors_name_the_field_and_the_forms(batching, words):
    message = error_of({**BASE, "batching": batching})
    assert message.startswith("f.yaml: field `batching`: ") and words in message


def test_batching_is_an_axis_of_the_expansion_and_iid_by_default():
    plain = expand(validate_suite(dict(BASE)))
    assert {s.batching for s in plain} == {()} and {s.batching_label for s in plain} == {"iid"}
    both = expand(validate_suite({**BASE, "batching": ["iid", {"classes_per_batch": 2}]}))
    assert len(both) == 2 * len(plain)
    assert [s.run_id for s in both if s.batching == ()] == [s.run_id for s in plain]  # iid runs keep their ids
    assert {s.batching_label for s in both} == {"iid", "classes_per_batch=2"}


def test_batching_can_be_set_from_the_command_line(tmp_path):
    suite, _ = load_suite(write(tmp_path, BASE), ["batching={classes_per_batch: 1}"])
    assert {s.batching_label for s in expand(suite)} == {"classes_per_batch=1"}
