"""Device records and availability; CUDA timings (marked `cuda`, skipped without a GPU; untested here)."""

from dataclasses import replace

import pytest
import torch
from conftest import FAST_TIMING

from normbench.env import cpu_model
from normbench.throughput import device_info, layer_spec, run_throughput_spec, throughput_environment
from normbench.throughput.device import dtype_unsupported_reason, resolve_devices

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cpu_info_records_model_and_threads():
    info = device_info("cpu")
    assert info["available"] is True and info["name"] == cpu_model() == info["cpu"]
    assert info["torch_threads"] == torch.get_num_threads() and info["cpu_count"] >= 1
    assert info["torch"] == torch.__version__


def test_absent_device_info_says_why():
    info = device_info("cuda:97")
    assert info["available"] is False and info["reason"]


def test_environment_lists_every_known_device():
    env = throughput_environment(["cpu"])
    assert set(env["device_availability"]) == {"cpu", "cuda", "mps"}
    assert env["device_availability"]["cpu"] == {"available": True, "reason": ""}
    assert env["device_availability"]["cuda"]["available"] == torch.cuda.is_available()
    assert set(env["throughput_devices"]) == {"cpu"}


def test_explicit_devices_stay_and_auto_adds_available_ones():
    assert resolve_devices(["cuda:97", "auto"])[0] == "cuda:97"
    assert "cpu" in resolve_devices(["auto"]) and resolve_devices(["cpu", "auto"]).count("cpu") == 1


def test_known_dtype_limits():
    assert dtype_unsupported_reason("cpu", "bfloat16") is None
    assert dtype_unsupported_reason("cpu", "float32") is None
    assert "float64" in dtype_unsupported_reason("mps", "float64")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_cuda_layer_timing(dtype):  # pragma: no cover - needs a GPU
    spec = replace(layer_spec("batch", (8, 16, 8, 8), device="cuda", dtype=dtype, threads=1, **FAST_TIMING),
                   operation="forward_backward")
    result = run_throughput_spec(spec)
    if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        assert result.outcome == "skipped" and "bfloat16" in result.reason
        return
    assert result.outcome == "completed", result.reason
    assert result.median_s > 0 and result.copy_median_s > 0
    assert "max_memory_allocated" in result.peak_memory_method and result.peak_memory_bytes > 0
    assert result.device_name == torch.cuda.get_device_name(0)


@pytest.mark.cuda
@needs_cuda
def test_cuda_info_has_gpu_and_versions():  # pragma: no cover - needs a GPU
    info = device_info("cuda")
    assert info["gpu"] == torch.cuda.get_device_name(0)
    assert info["cuda_runtime"] == torch.version.cuda and "compute_capability" in info
    assert "driver" in info  # None only where neither pynvml nor nvidia-smi exists
