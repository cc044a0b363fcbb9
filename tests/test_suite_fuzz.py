"""Fuzzing the suite loader and the --set parser: every input loads or gets a SuiteError."""

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from normbench.checks import check_suite
from normbench.suite import SuiteError, load_suite

VALID = {
    "name": "fz", "dataset": "digits", "models": [{"name": "mlp", "options": {"widths": [8]}}],
    "norms": ["bn"], "batch_sizes": [4], "seeds": 1, "steps": 2, "optimizer": {"lr": 0.1},
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.text(max_size=12),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
fields = st.sampled_from(list(VALID) + ["devices", "epochs", "samples", "probes", "lr_scaling", "eval_every", "batching",
                                         "x"])
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def load_or_suite_error(path, overrides=()):
    try:
        suite, _ = load_suite(path, list(overrides))
        check_suite(suite, source=path)
    except SuiteError as exc:
        assert str(exc).strip(), "a SuiteError must say what is wrong"


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_text(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    load_or_suite_error(path)


@FUZZ
@given(changes=st.dictionaries(fields, values, max_size=3))
def test_mutated_valid_suites(tmp_path, changes):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump({**VALID, **changes}), encoding="utf-8")
    load_or_suite_error(path)


@FUZZ
@given(overrides=st.lists(st.one_of(
    st.text(max_size=30),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["seeds", "batch_sizes", "optimizer.lr", "dataset.split_seed",
                                                           "norms", "steps", "epochs", "probes", "a.b.c", "devices"]),
              st.text(max_size=20)),
), max_size=3))
def test_arbitrary_overrides(tmp_path, overrides):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(VALID), encoding="utf-8")
    load_or_suite_error(path, overrides)
