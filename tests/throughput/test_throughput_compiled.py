"""Compiled variants: availability reasons, compiler errors as skips, expansion of `compile`."""

import pytest
from conftest import FAST_TIMING, tiny_suite

from normbench.throughput import layer_spec, load_throughput_suite, run_throughput_spec
from normbench.throughput.compiled import compile_unavailable_reason, compiled, is_compiler_error


def test_eager_is_always_available_and_a_missing_compiler_is_a_reason(monkeypatch):
    assert compile_unavailable_reason("eager", "cpu") is None
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    reason = compile_unavailable_reason("inductor", "cpu")
    assert "'no-such-compiler-xyz' is not on PATH" in reason
    assert "does not generate kernels for mps" in compile_unavailable_reason("inductor", "mps")


def test_spec_without_a_compiler_is_skipped_with_the_reason_before_anything_runs(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    result = run_throughput_spec(layer_spec("batch", (4, 4), threads=1, compile="inductor", **FAST_TIMING))
    assert result.outcome == "skipped"
    assert result.reason.startswith("torch.compile (inductor) unavailable: inductor builds CPU kernels")
    assert result.samples == [] and result.compile_time_s is None


def test_compiler_errors_are_recognised_through_their_causes():
    Dynamo = type("BackendCompilerFailed", (RuntimeError,), {"__module__": "torch._dynamo.exc"})
    try:
        try:
            raise Dynamo("inductor exploded")
        except Dynamo as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_compiler_error(outer)
    assert not is_compiler_error(RuntimeError("a plain kernel error"))
    with pytest.raises(ValueError, match="allowed: eager, inductor"):
        compiled(object(), "jit")


def test_compile_modes_expand_layers_and_models(write_suite):
    suite = tiny_suite(layers={"norms": ["batch"], "shapes": [[4, 4]], "dtypes": ["float32"], "modes": ["train"],
                               "passes": ["forward"], "compile": ["eager", "inductor"]},
                       models={"subjects": [{"name": "mlp", "input_shape": [8]}], "norms": ["none"], "batch_sizes": [4],
                               "steps": ["inference"], "compile": ["inductor"]})
    loaded, _ = load_throughput_suite(write_suite(suite))
    from normbench.throughput import expand_throughput

    specs = expand_throughput(loaded)
    assert [(s.subject, s.compile, s.native) for s in specs] == [
        ("layer", "eager", True), ("layer", "inductor", True), ("model", "inductor", False)]
    assert specs[1].describe().endswith(" inductor") and specs[0].spec_id != specs[1].spec_id


def test_duplicate_compile_modes_are_refused(write_suite):
    from normbench.suite import SuiteError

    suite = tiny_suite(layers={"norms": ["batch"], "shapes": [[4, 4]], "compile": ["eager", "eager"]})
    with pytest.raises(SuiteError, match="compile"):
        load_throughput_suite(write_suite(suite))
    suite = tiny_suite(layers={"norms": ["batch"], "shapes": [[4, 4]], "compile": ["jit"]})
    with pytest.raises(SuiteError, match="eager"):
        load_throughput_suite(write_suite(suite))


@pytest.mark.slow
def test_compiled_layer_records_its_compile_time():
    from normbench.throughput.compiled import compile_unavailable_reason as why

    if why("inductor", "cpu"):
        pytest.skip(why("inductor", "cpu"))
    result = run_throughput_spec(layer_spec("none", (4, 4), threads=1, compile="inductor", peak_memory=False,
                                            copy_bandwidth=False, **FAST_TIMING))
    assert result.outcome == "completed", result.reason
    assert result.compile_time_s > 0 and result.native_ratio is not None
