"""--dist npu against Ascend's real adapter (test/ascend_adapter.py): the HCCL wiring of its
distributed and loss-scale optimizers, the environment an HCCL job needs, and two ranks on one
machine started by scripts/train_npu_8p.sh, whose stub HCCL calls exchange real values, against one
process with twice the batch; with overflows on one rank, without --seed, resumed, interrupted."""

import json
import os
import re
import signal
import subprocess
import tempfile
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import ascend_adapter
from tprnn.training import checkpoints
from tprnn.util import devices
from tprnn.parallel import backends
from tprnn.parallel import cluster
from tprnn.training import graph
from tprnn.training import run
import tprnn_train_human
from conftest import (HUMAN_SCRIPT as HUMAN, ROOT, TINY, adapter_python, alive, argv_of,
                      checkpoint_dirs, error_lines, losses, run_script, weights, write_rank_table)

LAUNCH = os.path.join(ROOT, "scripts", "train_npu_8p.sh")
CLIPPED = {"--max_gradient_norm": "0.05"}  # far below these losses' gradient norm
MODELS = {"basic": dict(CLIPPED, **{"--model": "basic"}),
          "generic": dict(CLIPPED, **{"--model": "generic", "--fix_generic_contexts": None,
                                      "--learning_rate": "0.01"})}
# Short sequences; evaluations (and best-model saves) at steps 10 and 20.
SHORT = {"--seq_length_in": "4", "--seq_length_out": "4", "--iterations": "21",
         "--test_every": "10", "--save_every": "10"}
OVERFLOWS = "1,3"  # steps whose float status overflows, on rank 1 of two ranks or in one process


def npu_env(monkeypatch, tmp_path, **values):
  """Rank 1 of 2 with a rank table of 2 devices; a value None removes the variable."""
  table = write_rank_table(tmp_path / "rank_table.json", [0, 1])
  env = dict({"RANK_SIZE": "2", "RANK_ID": "1", "JOB_ID": "10087", "RANK_TABLE_FILE": table,
              "ASCEND_DEVICE_ID": "1", "DEVICE_ID": None}, **values)
  for name, value in env.items():
    if value is None:
      monkeypatch.delenv(name, raising=False)
    else:
      monkeypatch.setenv(name, value)


@pytest.mark.parametrize("mode", ["force_fp16", "must_keep_origin_dtype"])
def test_hccl_wiring_of_the_adapters_optimizers(adapter, monkeypatch, tmp_path, mode):
  """Each gradient is all-reduced inside the adapter's distributed optimizer (then divided by
  RANK_SIZE), the float status once in fp16 modes, the step's loss and requests, and the barrier of
  on_rank0; every variable and the seed are broadcast from rank 0."""
  npu_env(monkeypatch, tmp_path)
  flags = run.with_runtime(tprnn_train_human.parse_flags(["--rnn_size", "4", "--precision_mode", mode]))
  assert flags.cluster == cluster.Cluster("npu", 1, 2, [], cluster.DEFAULT_TIMEOUT_S, "1")
  net = graph.build_model(flags, 54, 5, seed=0,
                          backend=backends.make(flags.cluster, flags.placement))
  with net.graph.as_default():
    trainable, variables = tf.trainable_variables(), tf.global_variables()
  built = adapter.stub_ops.built
  reduced = [inputs for op, reduction, inputs in built if op == "hcom_all_reduce"]
  assert {reduction for op, reduction, _ in built if op == "hcom_all_reduce"} == {"sum"}
  float_status = [i for i in reduced if "NpuAllocFloatStatus" in i[0]]
  assert len(float_status) == (mode in devices.NPU_FP16_MODES)
  assert len(reduced) == len(trainable) + len(float_status) + 3  # + loss, requests, barrier
  broadcast = sorted(name for op, root, inputs in built if op == "hcom_broadcast" for name in inputs)
  assert {root for op, root, _ in built if op == "hcom_broadcast"} == {0}
  assert broadcast == sorted([v.op.name for v in variables] + ["seed"])
  if mode in devices.NPU_FP16_MODES:
    assert {"loss_scale", "good_steps", "bad_steps"} <= {v.op.name for v in variables}


@pytest.mark.parametrize("values,message", [
    ({"RANK_TABLE_FILE": None}, "RANK_SIZE=2 needs RANK_TABLE_FILE"),
    ({"RANK_ID": None}, "RANK_SIZE=2 needs RANK_ID, this process's rank, 0..1"),
    ({"JOB_ID": None}, "RANK_SIZE=2 needs JOB_ID, any job number, the same on every rank"),
    ({"ASCEND_DEVICE_ID": None}, "RANK_SIZE=2 needs ASCEND_DEVICE_ID (or DEVICE_ID)"),
    ({"RANK_ID": "2"}, "RANK_ID=2 is not below RANK_SIZE=2"),
    ({"RANK_SIZE": "two"}, "environment variable RANK_SIZE='two' is not an integer"),
    ({"RANK_SIZE": "3"}, "RANK_SIZE=3 but RANK_TABLE_FILE {table} lists ranks 0, 1: HCCL's world is "
                         "every rank of the table"),
    ({"RANK_TABLE_FILE": "{tmp}/none.json"}, "RANK_TABLE_FILE {tmp}/none.json: No such file"),
    ({"RANK_TABLE_FILE": "{tmp}/bad.json"}, "RANK_TABLE_FILE {tmp}/bad.json is not JSON"),
])
def test_hccl_environment_errors_are_one_line(adapter, monkeypatch, tmp_path, values, message):
  (tmp_path / "bad.json").write_text("{server_list")

  def fill(text):
    return text.format(tmp=tmp_path, table=tmp_path / "rank_table.json")

  npu_env(monkeypatch, tmp_path, **{k: v and fill(v) for k, v in values.items()})
  code, _, err = run_script(tprnn_train_human, ["--data_dir", "nowhere", "--dist", "npu"])
  assert code == 1 and err.count("\n") == 1 and fill(message) in err, err


def test_dist_npu_needs_the_npu_device(adapter, monkeypatch, tmp_path):
  npu_env(monkeypatch, tmp_path)
  code, _, err = run_script(tprnn_train_human, ["--data_dir", "nowhere", "--dist", "npu",
                                                "--device", "cpu"])
  assert code == 1 and "--dist npu needs --device npu" in err


# ----------------------------------------------------------------------------
# Two ranks on one machine


def start_ranks(processes, tmp_path, tag, flags, rank_size=2, env=None):
  """scripts/train_npu_8p.sh running tprnn_train_human.py with `flags` on `rank_size` ranks under the
  adapter of `tag` (a fresh directory for their HCCL calls), with `env` added to the environment.
  Returns (process, log of a device)."""
  hccl = tempfile.mkdtemp(prefix="hccl", dir=str(tmp_path))
  python, adapter_env = adapter_python(tmp_path, tag, hccl)
  logs = str(tmp_path / "logs")
  table = write_rank_table(tmp_path / "rank_table.json", range(rank_size))
  proc = processes.start(["bash", LAUNCH, HUMAN] + argv_of(flags), env=dict(
      adapter_env, PYTHON=python, RANK_SIZE=str(rank_size), RANK_TABLE_FILE=table, LOG_DIR=logs,
      **(env or {})))
  processes.worker_pids += [int(p) for p in re.findall(r"\d+", re.search(
      r"\(pids ([0-9 ]+)\)", proc.stdout.readline()).group(1))]
  return proc, lambda device: read(os.path.join(logs, str(device), "train_{}.log".format(device)))


def read(path):
  with open(path) as f:
    return f.read()


def finish(proc, timeout=300, log=None):
  """(exit status, stdout, stderr) of the launcher; on a timeout, an error showing the ranks' logs."""
  try:
    out, err = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    raise AssertionError("the ranks did not end within {} s:\n{}".format(
        timeout, log(0) + log(1) if log else ""))
  return proc.returncode, out, err


def run_one_process(processes, tmp_path, tag, flags, env):
  python, adapter_env = adapter_python(tmp_path, tag)
  proc = processes.start([python, HUMAN, "--device", "npu"] + argv_of(flags),
                         env=dict(adapter_env, **env))
  code, out, err = finish(proc)
  assert code == 0, err
  return out


def assert_same_weights(a, b):
  assert sorted(a) == sorted(b)
  for name in a:
    np.testing.assert_allclose(b[name], a[name], atol=1e-5, err_msg=name)


def read_seed(directory):
  with open(os.path.join(directory, "flags.json")) as f:
    return json.load(f)["seed"]


@pytest.mark.slow
@pytest.mark.parametrize("tag,model,mode,seeded", [
    ("r1.2.0", "basic", "force_fp16", True), ("r1.2.0", "generic", "must_keep_origin_dtype", True),
    ("r1.6.0", "basic", "must_keep_origin_dtype", False), ("r1.6.0", "generic", "force_fp16", True)])
def test_two_ranks_equal_one_process_with_twice_the_batch(processes, h36m, tmp_path, tag, model,
                                                          mode, seeded):
  """2 ranks x batch 4 and 1 process x batch 8 with the same seed print the same losses and end
  with the same weights, through two evaluations on rank 0 alone. Overflows on rank 1 alone skip
  both ranks' updates in fp16 modes, as the same overflows do in one process. Unseeded, rank 0 draws
  the seed and sends it, and a --load resume halfway takes the run's recorded seed on every rank."""
  flags = dict(TINY, **MODELS[model], **SHORT, **{"--data_dir": h36m, "--precision_mode": mode,
                                                  "--train_dir": str(tmp_path / "two")})
  ranks = dict(flags if seeded else {k: v for k, v in flags.items() if k != "--seed"},
               **{"--batch_size": "4"})
  parts = [{}] if seeded else [{"--more": "11"}, {"--load": "11", "--more": "10"}]
  rank0 = rank1 = ""
  for part in parts:
    proc, log = start_ranks(processes, tmp_path, tag, dict(ranks, **part), env={
        ascend_adapter.OVERFLOW_STEPS_ENV: OVERFLOWS, ascend_adapter.OVERFLOW_RANK_ENV: "1"})
    code, _, err = finish(proc)
    assert code == 0, err + log(0) + log(1)
    rank0, rank1 = rank0 + log(0), rank1 + log(1)
  (two_dir,) = checkpoint_dirs(str(tmp_path / "two"))
  seed = read_seed(two_dir)
  assert seeded == (seed == int(TINY["--seed"]))
  if not seeded:
    assert "Seed: {} (the resumed run's)".format(seed) in rank0
  single = run_one_process(processes, tmp_path, tag, dict(flags, **{
      "--batch_size": "8", "--seed": str(seed), "--train_dir": str(tmp_path / "one")}),
      {ascend_adapter.OVERFLOW_STEPS_ENV: OVERFLOWS})
  (one_dir,) = checkpoint_dirs(str(tmp_path / "one"))
  assert "Distributed: npu backend, worker 0 of 2 (device 0)" in rank0
  assert len(losses(single)) == 3 and losses(rank0) == losses(single)
  assert rank0.count("Global step:") == 2 and not losses(rank1) and "Global step:" not in rank1
  assert checkpoints.steps(two_dir) == ([10, 20, 21] if seeded else [10, 11, 20, 21])
  final = weights(two_dir, 21)
  assert_same_weights(weights(one_dir, 21), final)
  if mode in devices.NPU_FP16_MODES:  # 2 updates skipped: the scale halved; 17 good steps since
    assert [final[name] for name in ("Variable_1", "loss_scale", "good_steps", "bad_steps")] == [
        19, 2.0 ** 31, 17, 0]
  else:
    assert final["Variable_1"] == 21
  for log_dir in ("train", "test"):  # one writer
    assert len(os.listdir(os.path.join(two_dir, "log", log_dir))) == len(parts)


@pytest.mark.slow
def test_sigterm_stops_every_rank_at_one_step_after_rolling_saves(processes, h36m, tmp_path):
  """Save requests (--save_secs) and the stop request ride on each step's HCCL mean: rank 0 saves
  rolling checkpoints while the others wait, and SIGTERM to the launcher (its Ctrl-C path; SIGINT
  may be ignored by a shell started in the background) stops both ranks at one step, which rank 0
  saves."""
  flags = dict(TINY, **{"--data_dir": h36m, "--train_dir": str(tmp_path / "exp"),
                        "--iterations": "100000", "--test_every": "100000", "--save_secs": "1"})
  proc, log = start_ranks(processes, tmp_path, "r1.6.0", flags)
  deadline = time.time() + 120

  def directory():
    return re.search(r"^Experiment directory: (\S+)", log(0), re.M).group(1)

  while not (re.search(r"^step 0030", log(0), re.M) and
             checkpoints.steps(directory(), checkpoints.ROLLING_PREFIX)):
    assert proc.poll() is None and time.time() < deadline, log(0) + log(1)
    time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  code, _, err = finish(proc, timeout=60, log=log)
  assert code == 128 + signal.SIGTERM, err
  step = int(re.search(r"Interrupted at step (\d+); resume with: python \S+ --experiment_dir \S+ "
                       r"--load \1 --more \d+", log(0)).group(1))
  directory = directory()
  assert weights(directory, step)["Variable_1"] == step
  assert 0 < max(checkpoints.steps(directory, checkpoints.ROLLING_PREFIX)) < step
  assert not any(alive(pid) for pid in processes.worker_pids)


@pytest.mark.slow
def test_rank0_failing_in_its_evaluation_stops_the_others_at_once(processes, h36m, tmp_path):
  """Finite weights whose predictions are NaN (one step at lr 1e6): rank 0's evaluation fails, and
  the barrier the others wait in tells them so, well before HCCL_EXEC_TIMEOUT (136 s here)."""
  flags = dict(dict(TINY, **SHORT), **{"--data_dir": h36m, "--train_dir": str(tmp_path / "exp"),
                                       "--learning_rate": "1e6", "--iterations": "3",
                                       "--test_every": "1"})
  proc, log = start_ranks(processes, tmp_path, "r1.6.0", flags)
  start = time.time()
  code, _, err = finish(proc, timeout=120, log=log)
  assert code == 1 and time.time() - start < 60, err
  (rank0,) = error_lines(log(0))
  assert rank0.startswith("error: the model predicts non-finite values (NaN or inf)")
  assert error_lines(log(1)) == ["error: rank 0 failed while it evaluated or saved (its log says "
                                 "why); rank 1 stops"]
