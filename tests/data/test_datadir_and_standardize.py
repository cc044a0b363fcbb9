"""The data-directory resolution shared by the file-based loaders, and exact uint8 standardization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normbench.data import DATA_DIR_ENV, DataNotFoundError, standardize
from normbench.data.datadir import find_files, resolve_data_dir


def test_option_wins_over_environment(tmp_path, monkeypatch):
    (tmp_path / "env").mkdir()
    (tmp_path / "opt").mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_dir("x", str(tmp_path / "opt")) == (tmp_path / "opt", "option data_dir")
    assert resolve_data_dir("x", None) == (tmp_path / "env", "environment variable NORMBENCH_DATA")
    assert resolve_data_dir("x", "")[0] == tmp_path / "env"  # an empty option counts as not given


def test_home_directory_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir("x", "~")[0] == tmp_path


def test_a_file_is_not_a_data_directory(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(DataNotFoundError, match=r"does not exist or is not a directory"):
        resolve_data_dir("x", str(tmp_path / "f"))


def test_find_files_prefers_the_first_suffix_and_the_first_complete_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a", "a.gz", "b.gz"):
        (tmp_path / name).write_text("")
    for name in ("a", "b"):
        (tmp_path / "sub" / name).write_text("")
    found = find_files("x", tmp_path, "here", ["", "sub"], ["a", "b"], suffixes=("", ".gz"))
    assert found == {"a": tmp_path / "a", "b": tmp_path / "b.gz"}
    (tmp_path / "b.gz").unlink()
    found = find_files("x", tmp_path, "here", ["", "sub"], ["a", "b"], suffixes=("", ".gz"))
    assert found == {"a": tmp_path / "sub" / "a", "b": tmp_path / "sub" / "b"}


@pytest.mark.parametrize("channel_axis", [None, 1])
@pytest.mark.parametrize("n", [1, 7, standardize.CHUNK_ROWS + 3])  # one chunk, and across a chunk boundary
def test_uint8_moments_match_float64_numpy(n, channel_axis):
    images = np.random.default_rng(n).integers(0, 256, (n, 3, 5, 4), dtype=np.uint8)
    mean, std = standardize.uint8_moments(images, channel_axis)
    axes = None if channel_axis is None else (0, 2, 3)
    assert np.allclose(mean, images.astype(np.float64).mean(axis=axes), rtol=1e-12)
    assert np.allclose(std, images.astype(np.float64).std(axis=axes), rtol=1e-10)
    out = standardize.standardize_uint8(images, mean, std, channel_axis)
    shape = (1, -1, 1, 1) if channel_axis else ()
    expected = (images - np.reshape(mean, shape)) / np.reshape(std, shape)
    assert out.dtype == torch.float32 and np.allclose(out.numpy(), expected, atol=1e-5)


def test_constant_images_are_centred_not_divided_by_zero():
    images = np.full((4, 2, 2), 7, dtype=np.uint8)
    mean, std = standardize.uint8_moments(images)
    assert float(mean) == 7 and float(std) == 0
    assert torch.equal(standardize.standardize_uint8(images, mean, std), torch.zeros(4, 2, 2))
