"""The suite's `analysis:` block: defaults, validation with clear messages, and reading it back from a store."""

from __future__ import annotations

import pytest
import yaml

from normbench.analysis_config import AnalysisConfig, declared_analysis, describe
from normbench.suite import SuiteError, validate_suite

SUITE = {"name": "t", "dataset": "digits", "models": ["mlp"], "norms": ["bn", "gn"], "batch_sizes": [4, 64],
         "seeds": 3, "steps": 10, "optimizer": {"lr": 0.1}}


def test_defaults_are_the_documented_analysis():
    config = validate_suite(SUITE).analysis
    assert config == AnalysisConfig()
    assert (config.test, config.interval, config.alpha, config.margin, config.correction, config.diverged_as,
            config.reference_norm, config.reference_batch_size, config.power) == (
        "t", "t", 0.05, 1.0, "holm", "exclude", "batch", None, 0.8)
    assert "reference_batch_size the largest" in describe(config)


def test_a_declared_block_is_validated_with_the_field_named():
    declared = validate_suite({**SUITE, "analysis": {"test": "permutation", "margin": 0.5, "correction": "bh",
                                                     "diverged_as": "worst_rank", "reference_batch_size": 4}})
    assert (declared.analysis.test, declared.analysis.margin, declared.analysis.reference_batch_size) == (
        "permutation", 0.5, 4)
    for bad, field in (({"test": "wilcoxon"}, "analysis.test"), ({"margin": 0}, "analysis.margin"),
                       ({"alpha": 0.7}, "analysis.alpha"), ({"diverged_as": "drop"}, "analysis.diverged_as")):
        with pytest.raises(SuiteError, match=f"field `{field}`"):
            validate_suite({**SUITE, "analysis": bad})
    with pytest.raises(SuiteError, match="unknown analysis field.*margins; allowed: test, interval"):
        validate_suite({**SUITE, "analysis": {"margins": 2}})


def test_the_report_reads_the_block_back_from_the_stored_yaml():
    text = yaml.safe_dump({**SUITE, "analysis": {"margin": 2.0, "reference_batch_size": 4}})
    config, source = declared_analysis(text)
    assert (config.margin, config.reference_batch_size, source) == (2.0, 4, "suite")
    assert declared_analysis(yaml.safe_dump(SUITE)) == (AnalysisConfig(), "defaults")
    assert declared_analysis("") == (AnalysisConfig(), "defaults")
    config, source = declared_analysis(yaml.safe_dump({**SUITE, "analysis": {"margin": -1}}))
    assert config == AnalysisConfig() and source.startswith("defaults (the stored analysis block is invalid: margin")
    assert declared_analysis("a: [")[1].startswith("defaults (the stored suite YAML cannot be read")


def test_a_reference_batch_size_the_suite_does_not_run_is_named():
    from normbench.analysis_config import check_against_suite

    check_against_suite(AnalysisConfig(reference_batch_size=4), [4, 64])
    check_against_suite(AnalysisConfig(), [4, 64])
    with pytest.raises(ValueError, match=r"reference_batch_size 16 is not one of the suite's batch_sizes \[4, 64\]"):
        check_against_suite(AnalysisConfig(reference_batch_size=16), [64, 4])
