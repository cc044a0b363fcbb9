"""ThroughputSpec: stable ids, round trips, and what expansion resolves (auto devices, threads)."""

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
from conftest import tiny_suite

from normbench.spec import freeze_options
from normbench.throughput import ThroughputSpec, expand_throughput, layer_spec, validate_throughput_suite
from normbench.throughput.spec import THROUGHPUT_SPEC_VERSION


def make_spec(**changes) -> ThroughputSpec:
    spec = layer_spec("group", (4, 4, 3, 3), threads=1, norm_options={"num_groups": 2}, min_run_time=0.1)
    return replace(spec, **changes)


def test_spec_id_is_sha256_of_canonical_json_with_version():
    spec = make_spec()
    payload = json.dumps({"throughput_spec_version": THROUGHPUT_SPEC_VERSION, "spec": spec.to_dict()},
                         sort_keys=True, separators=(",", ":"))
    assert spec.spec_id == hashlib.sha256(payload.encode()).hexdigest()[:16]


def test_spec_id_is_pinned():
    # Changing what an id covers silently re-measures (or mixes) stored results: bump
    # THROUGHPUT_SPEC_VERSION and update this value deliberately.
    assert make_spec().spec_id == "5a5d4339ae488330"


@pytest.mark.slow
def test_spec_id_is_stable_across_processes():
    # Python salts str hashes per process; one other process with another salt must agree.
    code = (
        "from normbench.throughput import layer_spec;"
        "print(layer_spec('group', (4, 4, 3, 3), threads=1, norm_options={'num_groups': 2}, min_run_time=0.1).spec_id)"
    )
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
    assert out == make_spec().spec_id


def test_every_field_changes_the_id():
    base = make_spec()
    changed = [
        replace(base, shape=(4, 4, 3, 4)), replace(base, dtype="bfloat16"), replace(base, mode="eval"),
        replace(base, operation="forward_backward"), replace(base, threads=2), replace(base, device="cuda"),
        replace(base, memory_format="channels_last"), replace(base, min_run_time=0.2), replace(base, seed=1),
        replace(base, allocator="system"),
    ]
    assert len({s.spec_id for s in changed} | {base.spec_id}) == len(changed) + 1


def test_option_order_does_not_change_the_id():
    a = layer_spec("batch", (4, 4), threads=1, norm_options={"eps": 1e-3, "momentum": 0.2})
    b = layer_spec("batch", (4, 4), threads=1, norm_options={"momentum": 0.2, "eps": 1e-3})
    assert a.spec_id == b.spec_id and a == b and hash(a) == hash(b)


def test_round_trip_through_dict():
    spec = make_spec(options=freeze_options({"out_channels": 8, "kernel_size": 3}))
    again = ThroughputSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.spec_id == spec.spec_id
    assert spec.batch_size == 4 and spec.numel == 4 * 4 * 3 * 3


def test_auto_devices_are_every_available_device(monkeypatch):
    import normbench.throughput.device as device

    suite = validate_throughput_suite(tiny_suite(devices=["auto"]))
    monkeypatch.setattr(device, "device_unavailable_reason", lambda d: None if d in ("cpu", "cuda") else "absent")
    assert {s.device for s in expand_throughput(suite)} == {"cpu", "cuda"}
    monkeypatch.setattr(device, "device_unavailable_reason", lambda d: None if d == "cpu" else "absent")
    assert {s.device for s in expand_throughput(suite)} == {"cpu"}


def test_dtypes_per_device_kind(monkeypatch):
    import normbench.throughput.device as device

    layers = dict(tiny_suite()["layers"], dtypes={"cpu": ["float32", "bfloat16"], "cuda": ["float16"]},
                  memory_formats=["contiguous"], shapes=[[4, 4]])
    suite = validate_throughput_suite(tiny_suite(devices=["cpu", "cuda:1"], layers=layers))
    monkeypatch.setattr(device, "device_unavailable_reason", lambda d: None)
    pairs = {(s.device, s.dtype) for s in expand_throughput(suite)}
    assert pairs == {("cpu", "float32"), ("cpu", "bfloat16"), ("cuda:1", "float16")}


def test_threads_auto_is_the_cpu_affinity(monkeypatch):
    import normbench.throughput.device as device

    monkeypatch.setattr(device, "cpu_threads_default", lambda: 7)
    suite = validate_throughput_suite(tiny_suite(threads=["auto", 1]))
    assert {s.threads for s in expand_throughput(suite)} == {7, 1}


def test_model_and_conv_specs():
    suite = validate_throughput_suite(tiny_suite(
        layers=None,
        models={"subjects": ["mlp", {"name": "cnn2d", "input_shape": [1, 8, 8], "norms": ["group"]}],
                "norms": ["none", "batch"], "batch_sizes": [2, 4], "memory_formats": ["contiguous", "channels_last"]},
        fused_conv_bn={"cases": [{"input_shape": [2, 4, 6, 6], "out_channels": 8, "label": "c"}]},
    ))
    specs = expand_throughput(suite)
    models = [s for s in specs if s.subject == "model"]
    # mlp: 2 norms × 2 batches × 2 steps (contiguous only: 2-D input); cnn2d: 1 norm × 2 × 2 × 2 formats
    assert len(models) == 8 + 8
    assert {s.shape for s in models if s.name == "mlp"} == {(2, 784), (4, 784)}  # default MNIST-sized input
    assert {(s.operation, s.mode) for s in models} == {("train_step", "train"), ("inference", "eval")}
    convs = [s for s in specs if s.subject == "conv_bn"]
    assert [(s.variant, s.label) for s in convs] == [("unfolded", "c"), ("folded", "c")]
    assert convs[0].option_kwargs == {"out_channels": 8, "kernel_size": 3, "stride": 1}
