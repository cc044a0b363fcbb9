"""Throughput suites: schema and registry errors in the training suites' style, overrides, the shipped file."""

from pathlib import Path

import pytest
from conftest import tiny_suite

from normbench.suite import SuiteError
from normbench.throughput import expand_throughput, load_throughput_suite

SHIPPED = Path(__file__).resolve().parents[2] / "suites" / "throughput.yaml"


def load_error(write_suite, content, overrides=None, **kwargs) -> str:
    path = write_suite(content)
    with pytest.raises(SuiteError) as info:
        load_throughput_suite(path, overrides, **kwargs)
    message = str(info.value)
    assert str(path) in message  # every message names the file
    return message


def test_valid_tiny_suite_loads_and_keeps_its_text(write_suite):
    path = write_suite(tiny_suite())
    suite, text = load_throughput_suite(path)
    assert suite.kind == "throughput" and suite.name == "tiny"
    assert text == path.read_text()
    assert len(suite.layers) == 1 and suite.models is None


def test_shipped_suite_is_valid():
    suite, _ = load_throughput_suite(SHIPPED)
    names = {n.name for grid in suite.layers for n in grid.norms}
    from normbench.norms import available

    assert set(available()) <= names  # all norms
    assert sorted(s.name for s in suite.models[0].subjects) == ["cnn2d", "mlp", "rnn", "transformer"]
    assert suite.fused_conv_bn and suite.devices == ["auto"]
    shapes = [tuple(s) for s in suite.layers[0].shapes]
    assert (32, 64, 32, 32) in shapes and (32, 256, 128) in shapes


def test_shipped_compiled_suite_times_every_norm_of_the_main_suite_eager_and_compiled():
    from normbench.throughput import expand_throughput

    main, _ = load_throughput_suite(SHIPPED)
    compiled, _ = load_throughput_suite(SHIPPED.with_name("throughput_compiled.yaml"))
    main_norms = {n.name for grid in main.layers for n in grid.norms}
    specs = expand_throughput(compiled)
    assert {s.norm for s in specs} == main_norms and compiled.timing.native
    for norm in main_norms:
        assert sorted(s.compile for s in specs if s.norm == norm and s.threads == 1) == ["eager", "inductor"]


def test_unknown_field_names_allowed_fields(write_suite):
    suite = tiny_suite()
    suite["layers"]["shape"] = [[2, 2]]
    message = load_error(write_suite, suite)
    assert "field `layers.shape`: unknown field; allowed here: norms, shapes, dtypes" in message


def test_unknown_top_level_field(write_suite):
    message = load_error(write_suite, tiny_suite(batch_sizes=[4]))
    assert "field `batch_sizes`: unknown field; allowed here: name, description, kind" in message


def test_missing_kind_is_required(write_suite):
    suite = tiny_suite()
    del suite["kind"]
    assert "field `kind`: required field is missing" in load_error(write_suite, suite)


def test_bad_dtype_gets_one_message_with_allowed_values(write_suite):
    suite = tiny_suite()
    suite["layers"]["dtypes"] = ["float8"]
    message = load_error(write_suite, suite)
    assert message.count("\n") == 0  # one line, not one per branch of the list-or-mapping union
    assert "field `layers.dtypes`" in message and "allowed: float32, float16, bfloat16, float64" in message


def test_dtype_mapping_with_unknown_device_kind(write_suite):
    suite = tiny_suite()
    suite["layers"]["dtypes"] = {"tpu": ["float32"]}
    assert "allowed: cpu, cuda, mps" in load_error(write_suite, suite)


def test_unknown_norm_lists_available(write_suite):
    suite = tiny_suite()
    suite["layers"]["norms"] = ["batchnorm"]
    message = load_error(write_suite, suite)
    assert "field `layers.norms[0].name`: unknown norm 'batchnorm'" in message and "available: none, batch" in message


def test_group_count_that_does_not_divide_channels(write_suite):
    suite = tiny_suite()
    suite["layers"]["norms"] = [{"name": "group", "options": {"num_groups": 3}}]
    message = load_error(write_suite, suite)
    assert "field `layers.norms[0].options`" in message and "(with shape [4, 4, 3, 3])" in message


def test_channels_last_needs_a_4d_shape(write_suite):
    suite = tiny_suite()
    suite["layers"]["shapes"] = [[4, 4, 5]]
    message = load_error(write_suite, suite)
    assert "field `layers.memory_formats`: channels_last applies to 4-D inputs only" in message
    assert "allowed for these shapes: contiguous" in message


def test_no_sections_is_an_error(write_suite):
    suite = tiny_suite()
    del suite["layers"]
    assert "at least one of `layers`, `models`, `fused_conv_bn`" in load_error(write_suite, suite)


def test_several_grids_are_named_by_index(write_suite):
    grid = tiny_suite()["layers"]
    bad = dict(grid, shapes=[[0, 4]])
    message = load_error(write_suite, tiny_suite(layers=[grid, bad]))
    assert "field `layers[1].shapes`" in message


def test_unknown_model_and_bad_model_option(write_suite):
    models = {"subjects": ["resnet", {"name": "mlp", "options": {"depth": 3}}], "batch_sizes": [2]}
    message = load_error(write_suite, tiny_suite(models=models))
    assert "field `models.subjects[0].name`: unknown model 'resnet'; allowed: cnn1d, cnn2d, lenet5, mlp" in message
    assert "field `models.norms[0]`" in message and "unknown option 'depth'" in message


def test_conv_case_kernel_must_be_odd(write_suite):
    fused = {"cases": [{"input_shape": [2, 4, 6, 6], "out_channels": 4, "kernel_size": 2}]}
    assert "field `fused_conv_bn.cases[0].kernel_size`: kernel_size must be odd" in load_error(
        write_suite, tiny_suite(fused_conv_bn=fused)
    )


def test_yaml_syntax_error_names_line(write_suite):
    assert "invalid YAML" in load_error(write_suite, "name: [unclosed\nkind: throughput\n")


def test_override_nested_field_and_every_grid(write_suite):
    grid = tiny_suite()["layers"]
    path = write_suite(tiny_suite(layers=[grid, dict(grid, modes=["eval"])]))
    suite, text = load_throughput_suite(path, ["timing.min_run_time=0.04", "layers.dtypes=[bfloat16]", "threads=[2]"])
    assert suite.timing.min_run_time == 0.04 and suite.threads == [2]
    assert len(suite.layers) == 2
    assert all(g.dtypes == ["bfloat16"] for g in suite.layers)  # a dotted key reaches every grid
    assert "min_run_time: 0.04" in text  # the text stored is the suite as run, and loads as the same suite
    assert load_throughput_suite(write_suite(text, "as_run.yaml"))[0] == suite


def test_override_can_drop_a_section(write_suite):
    models = {"subjects": ["mlp"], "batch_sizes": [2]}
    suite, _ = load_throughput_suite(write_suite(tiny_suite(models=models)), ["models=null"])
    assert suite.models is None


@pytest.mark.parametrize(
    "override, expected",
    [
        ("seeds=3", "unknown throughput suite field 'seeds'; allowed: name, description, kind"),
        ("timing", "expected key=value"),
        ("timing.min_run_time=[1", "is not valid YAML"),
        ("name.first=x", "name is not a section with fields"),
        ("timing.min_run_time=-1", "field `timing.min_run_time`: Input should be greater than 0"),
    ],
)
def test_bad_overrides(write_suite, override, expected):
    path = write_suite(tiny_suite())
    with pytest.raises(SuiteError, match=None) as info:
        load_throughput_suite(path, [override])
    assert expected in str(info.value)


def test_absent_device_is_recorded_by_default_and_refused_under_strict(write_suite):
    suite = tiny_suite(devices=["cpu", "cuda:97"])  # no machine has 98 GPUs
    loaded, _ = load_throughput_suite(write_suite(suite))
    assert loaded.devices == ["cpu", "cuda:97"]
    message = load_error(write_suite, suite, strict=True)
    assert "field `devices`: 'cuda:97'" in message and "--strict" in message
    assert "field `devices`" in load_error(write_suite, dict(suite, strict=True))  # strict in the file


def test_expansion_is_the_grid_product(write_suite):
    suite, _ = load_throughput_suite(write_suite(tiny_suite()))
    specs = expand_throughput(suite)
    # 2 norms × (4-D: 2 formats + 3-D: contiguous only) × 2 modes × 2 passes
    assert len(specs) == 2 * 3 * 2 * 2
    assert not [s for s in specs if s.memory_format == "channels_last" and len(s.shape) != 4]
    assert {s.norm_label for s in specs} == {"batch", "group(num_groups=2)"}
    assert specs[0].describe() == "batch 4x4x3x3 float32 train forward cpu 1t"
