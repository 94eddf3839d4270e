"""Bad input ends a run before it starts, with one error line naming the file, the line or the
flag: non-finite and undecodable H3.6M files, a test subject too short for the SRNN windows,
MATLAB v7.3 and non-finite Penn labels, flags out of range and a GPU that is not there."""

import os

import h5py
import numpy as np
import pytest
import scipy.io

import data_utils
from tprnn.util import devices
import load
from conftest import human, penn, write_h36m, write_penn_label


# ----------------------------------------------------------------------------
# Bad data


def replace_line(path, lineno, text):
  with open(path) as f:
    lines = f.read().splitlines()
  lines[lineno - 1] = text
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_number_in_a_data_file(tmp_path, value):
  root = write_h36m(str(tmp_path / "h36m"), frames=400)
  path = os.path.join(root, "S6", "walking_2.txt")
  replace_line(path, 7, ",".join(["0.1"] * 50 + [value] + ["0.1"] * 48))
  code, _, err = human(root, action="walking")
  assert code == 1 and err == "error: {}:7: a value is not finite (nan or inf)\n".format(path)


def test_undecodable_data_file(tmp_path):
  root = write_h36m(str(tmp_path / "h36m"), frames=400)
  path = os.path.join(root, "S1", "walking_1.txt")
  with open(path, "r+b") as f:
    f.seek(100)
    f.write(b"\xff\xfe\xfa")
  code, _, err = human(root, action="walking")
  assert code == 1
  assert err == ("error: {}: not text (undecodable byte at offset 100); expected 99 comma-separated "
                 "numbers a line\n".format(path))


def test_test_subject_too_short_for_the_srnn_windows(tmp_path):
  root = write_h36m(str(tmp_path / "h36m"), frames=300)
  code, _, err = human(root, action="walking", model="zero_velocity")
  assert code == 1
  assert err == ("error: S5 walking_1 has 150 frames at 25 fps; the SRNN test windows need at "
                 "least 167 (334 at 50 Hz)\n")
  assert data_utils.MIN_START + data_utils.SRNN_PREFIX + data_utils.SRNN_SUFFIX + 1 == 167


def write_mat73(path, label):
  """A MATLAB v7.3 file: HDF5 behind MATLAB's 128-byte header, each array
  stored transposed (MATLAB is column-major)."""
  with h5py.File(path, "w", userblock_size=512) as f:
    for key, value in label.items():
      f.create_dataset(key, data=np.asarray(value, dtype=np.float64).T)
  with open(path, "r+b") as f:
    f.write(b"MATLAB 7.3 MAT-file, written by the tests".ljust(116) + b"\0" * 8 + b"\x00\x02IM")


def test_matlab_v73_label_files_are_read(tmp_path):
  rng = np.random.RandomState(0)
  label = {"x": rng.uniform(10, 90, (30, 13)), "y": rng.uniform(5, 50, (30, 13)),
           "visibility": np.ones((30, 13)), "train": [[1]]}
  write_mat73(str(tmp_path / "0001.mat"), label)
  with pytest.raises(NotImplementedError):
    scipy.io.loadmat(str(tmp_path / "0001.mat"))  # scipy alone cannot
  x, y, vis, is_train = load.read_label(str(tmp_path / "0001.mat"))
  np.testing.assert_array_equal(x, label["x"])
  np.testing.assert_array_equal(y, label["y"])
  assert is_train is True and vis.shape == (30, 13)


def test_non_finite_penn_label(tmp_path):
  x = np.full((30, 13), 5.0)
  x[3, 4] = np.nan
  write_penn_label(tmp_path / "0001.mat", frames=30, train=-1, x=x)
  code, _, err = penn(tmp_path, model="zero_velocity")
  assert code == 1
  assert err == "error: {}: x holds non-finite values (nan or inf)\n".format(tmp_path / "0001.mat")


# ----------------------------------------------------------------------------
# Flags checked before anything runs


@pytest.mark.parametrize("flags,message", [
    ({"--iterations": "0"}, "--iterations must be at least 1, got 0"),
    ({"--more": "-3"}, "--more must be 0 or more, got -3"),
    ({"--load": "-1"}, "--load must be 0 or more, got -1"),
    ({"--seed": "-1"}, "--seed must be in 0..4294967295, got -1"),
    ({"--seed": str(2 ** 32)}, "--seed must be in 0..4294967295, got 4294967296"),
    ({"--max_gradient_norm": "0"}, "--max_gradient_norm must be positive, got 0.0"),
    ({"--save_secs": "-5"}, "--save_secs must be positive, got -5.0"),
    ({"--learning_rate": "0"}, "--learning_rate must be positive, got 0.0"),
    ({"--seq_length_out": "1"}, "--seq_length_out must be at least 2: the error table starts at 80 ms"),
])
def test_flag_ranges(flags, message):
  code, _, err = human("nowhere", flags)
  assert code == 1 and err.count("\n") == 1 and message in err, err


def test_device_gpu_without_a_gpu_is_an_error():
  if devices.gpu_available():
    pytest.skip("a GPU is visible here")
  code, _, err = human("nowhere", device="gpu")
  assert code == 1 and err.startswith("error: --device gpu: TensorFlow sees no GPU here")
