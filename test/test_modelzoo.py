"""The ModelZoo entry points test/train_{full,performance}_{1p,8p}.sh: end to end on this machine's
device, or on two ranks under Ascend's real adapter, the summary they print checked against their
logs, and one-line argument and environment errors."""

import os
import re
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, adapter_python, run_command as run, write_rank_table as write_table

TRAINING = ["--", "--action", "walking", "--rnn_size", "8", "--seq_length_in", "10", "--seed", "3"]
SUMMARY_KEYS = ("Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS",
                "TrainingTime", "ActualLoss", "E2ETrainingTime", "TrainAccuracy")


def modelzoo(name, h36m, out, *args, env=None):
  return run(["bash", os.path.join(ROOT, "test", name), "--data_path=" + h36m,
              "--output_path=" + str(out)] + list(args), env, timeout=600)


def summary_of(path):
  with open(path) as f:
    return dict(line.rstrip("\n").split(" = ", 1) for line in f)


def expected_summary(log, batch, ranks):
  """The figures the summary must hold, computed here from the run's log: sequences per second and
  ms per step from the progress lines after the first, the last loss, and the last table's average
  error at its longest horizon."""
  with open(log) as f:
    text = f.read()
  steps = re.findall(r"^step (\d+); step_loss: ([0-9.]+)  \(([0-9.]+) ms/step, \d+/\d+ done, "
                     r"[0-9hms ]+ left\)$", text, re.M)
  ms = np.mean([float(t) for _, _, t in steps[1:]])
  average = re.findall(r"^average +\|(.*)\|$", text, re.M)[-1]
  accuracy = [cell.strip() for cell in average.split("|") if cell.strip() != "n/a"][-1]
  return {"ActualFPS": batch * ranks * 1000 / ms, "TrainingTime": ms,
          "ActualLoss": steps[-1][1], "TrainAccuracy": accuracy}


def assert_summary(out, directory, case, batch, ranks, seconds):
  """`seconds`: how long the script ran, as the test measured it."""
  summary = summary_of(os.path.join(directory, case + ".log"))
  assert tuple(summary) == SUMMARY_KEYS
  assert summary["CaseName"] == case and summary["RankSize"] == str(ranks)
  assert summary["Network"] == "tprnn_ID1297_for_TensorFlow" and summary["BatchSize"] == str(batch)
  expected = expected_summary(os.path.join(directory, "train_{}.log".format(
      os.path.basename(directory))), batch, ranks)
  for key in ("ActualFPS", "TrainingTime"):
    np.testing.assert_allclose(float(summary[key]), expected[key], rtol=0.01, err_msg=key)
  assert (summary["ActualLoss"], summary["TrainAccuracy"]) == (expected["ActualLoss"],
                                                                expected["TrainAccuracy"])
  assert 0 < int(summary["E2ETrainingTime"]) <= seconds + 1
  for line in ("Final Performance images/sec : " + summary["ActualFPS"],
               "Final Train Accuracy : " + summary["TrainAccuracy"],
               "E2E Training Duration sec : " + summary["E2ETrainingTime"]):
    assert line in out


@pytest.mark.slow
@pytest.mark.parametrize("script,case", [("train_performance_1p.sh", "perf"),
                                         ("train_full_1p.sh", "acc")])
def test_1p_script_trains_on_this_machine_and_prints_its_summary(h36m, tmp_path, script, case):
  start = time.time()
  code, out, err = modelzoo(script, h36m, tmp_path, "--train_steps=30", "--batch_size=4",
                            *TRAINING, env={"ASCEND_DEVICE_ID": "3"})
  assert code == 0, err
  directory = str(tmp_path / "3")
  assert_summary(out, directory, "tprnn_ID1297_for_TensorFlow_bs4_1p_" + case, 4, 1,
                 time.time() - start)
  with open(os.path.join(directory, "train_3.log")) as f:
    assert "step 0020" in f.read()


@pytest.mark.slow
def test_8p_script_on_two_ranks_under_the_real_adapter(h36m, tmp_path):
  python, env = adapter_python(tmp_path, "r1.6.0", tmp_path / "hccl")
  table = write_table(tmp_path / "t.json", [5, 2])
  start = time.time()
  code, out, err = modelzoo("train_performance_8p.sh", h36m, tmp_path / "out", "--train_steps=20",
                            "--batch_size=4", *TRAINING, env=dict(
                                env, PYTHON=python, RANK_SIZE="2", RANK_TABLE_FILE=table))
  assert code == 0, err
  assert "Started 2 ranks on devices 5 2" in out
  assert_summary(out, str(tmp_path / "out" / "5"), "tprnn_ID1297_for_TensorFlow_bs4_2p_perf", 4, 2,
                 time.time() - start)
  with open(str(tmp_path / "out" / "2" / "train_2.log")) as f:
    assert "step_loss" not in f.read()  # rank 1 prints nothing


def training(*case):
  """A case the script's own checks pass, so that the training it starts (a process) refuses."""
  return pytest.param(*case, marks=pytest.mark.slow)


@pytest.mark.parametrize("script,args,env,message", [
    ("train_full_1p.sh", ["--batch=4"], {}, "unknown argument --batch=4 (expected --data_path="),
    training("train_full_1p.sh", ["--precision_mode=fp8"], {},
             "training exited with status 1: unknown --precision_mode 'fp8': expected one of "
             "force_fp16,"),
    ("train_full_1p.sh", ["--train_steps=0"], {}, "--train_steps=0: expected a positive integer"),
    training("train_full_1p.sh", ["--device=tpu"], {},
             "training exited with status 1: unknown --device 'tpu': expected one of auto, cpu, "
             "gpu, npu"),
    ("train_full_1p.sh", ["--data_path=/nowhere"], {}, "--data_path=/nowhere: no such directory"),
    training("train_performance_1p.sh", ["--train_steps=2", "--", "--rnn_size", "0"], {},
             "training exited with status 1: --rnn_size must be at least 1, got 0 (log: "),
    ("train_full_8p.sh", ["--device=cpu"], {}, "--device=cpu: the 8p scripts run on NPUs"),
    ("train_performance_8p.sh", [], {"RANK_SIZE": "9"}, "RANK_SIZE=9 but RANK_TABLE_FILE"),
])
def test_modelzoo_argument_and_environment_errors_are_one_line(h36m, tmp_path, script, args, env,
                                                               message):
  code, out, err = modelzoo(script, h36m, tmp_path, *args, env=dict(env, PYTHON=sys.executable))
  assert code == 1 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err
