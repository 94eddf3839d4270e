"""Runs that never lose work: SIGINT, SIGTERM and SIGKILL sent for real to the script's process,
an exact resume equal to an uninterrupted run (both scripts), and one run per experiment
directory (a held lock, a used directory)."""

import os
import re
import shlex
import signal
import sys
import time

import numpy as np
import pytest

from tprnn.training import checkpoints
from conftest import (DROP, HUMAN_SCRIPT, RECOVERY, ROOT, argv_of, error_lines, experiment_dir,
                      human, leftovers, penn, read_until, run_command, weights, with_flags,
                      write_penn_label)

RESUME = (r"^Interrupted at step (\d+); resume with: "
          r"(python \S+ --experiment_dir \S+ --load \1 --more \d+)$")


def start(processes, h36m, train_dir, **flags):
  """The H3.6M script as a real process (signals, SIGKILL), training until it is stopped."""
  changes = dict({"data_dir": h36m, "train_dir": train_dir, "iterations": "100000",
                  "test_every": "100000"}, **flags)
  return processes.start([sys.executable, HUMAN_SCRIPT] + argv_of(with_flags(RECOVERY, **changes)))


# ----------------------------------------------------------------------------
# Signals, SIGKILL, exact resume


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_signal_saves_says_how_to_resume_and_exits_128_plus_signal(processes, h36m, tmp_path,
                                                                   signum):
  proc = start(processes, h36m, tmp_path)
  read_until(proc, r"^step 0020")
  proc.send_signal(signum)
  out, err = proc.communicate(timeout=60)
  assert proc.returncode == 128 + signum
  assert error_lines(err) == []
  step, command = re.search(RESUME, out, re.M).groups()
  assert weights(experiment_dir(tmp_path), int(step))["Variable_1"] == int(step)
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="100000", test_every="100000")
  assert code == 1 and "resume with: {};".format(command) in err  # a fresh run into it


@pytest.mark.slow
def test_the_printed_resume_command_ends_where_the_uninterrupted_run_does(processes, h36m,
                                                                         tmp_path):
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path / "once", iterations="100",
                       test_every="100000", rnn_size="128")
  assert code == 0, err
  proc = start(processes, h36m, tmp_path / "twice", iterations="100", rnn_size="128")
  read_until(proc, r"^step 0020")
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=60)
  assert proc.returncode == 128 + signal.SIGINT, err
  step, command = re.search(RESUME, out, re.M).groups()
  argv = shlex.split(command)
  assert argv[1] == "tprnn_train_human.py" and argv[-2:] == ["--more", str(100 - int(step))]
  code, out, err = run_command([sys.executable] + argv[1:], cwd=ROOT, timeout=100)  # as printed
  assert code == 0, err
  once, twice = experiment_dir(tmp_path / "once"), experiment_dir(tmp_path / "twice")
  assert checkpoints.steps(once) == [100] and checkpoints.steps(twice) == [int(step), 100]
  a, b = weights(once, 100), weights(twice, 100)
  assert a["Variable_1"] == b["Variable_1"] == 100
  for name in a:
    np.testing.assert_allclose(b[name], a[name], atol=1e-5, err_msg=name)


@pytest.mark.slow
def test_second_signal_during_the_save_changes_nothing(processes, h36m, tmp_path):
  proc = start(processes, h36m, tmp_path, rnn_size="256")
  read_until(proc, r"^step 0010")
  proc.send_signal(signal.SIGTERM)
  read_until(proc, r"^Saving the model")
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err
  assert error_lines(err) == []
  step = int(re.search(r"Interrupted at step (\d+)", out).group(1))
  directory = experiment_dir(tmp_path)
  assert checkpoints.steps(directory) == [step] and not leftovers(directory)
  assert weights(directory, step)["Variable_1"] == step


@pytest.mark.slow
def test_sigkill_loses_at_most_save_secs_and_resumes_from_the_rolling_checkpoint(
    processes, h36m, tmp_path):
  proc = start(processes, h36m, tmp_path, save_secs="0.5")
  read_until(proc, r"^step 0030")
  deadline = time.time() + 30
  while not checkpoints.steps(experiment_dir(tmp_path), checkpoints.ROLLING_PREFIX):
    assert time.time() < deadline
    time.sleep(0.2)
  read_until(proc, r"^step 0060")
  proc.kill()
  proc.wait()
  directory = experiment_dir(tmp_path)
  rolling = checkpoints.steps(directory, checkpoints.ROLLING_PREFIX)
  assert 1 <= len(rolling) <= checkpoints.ROLLING_KEEP and checkpoints.steps(directory) == []
  last = rolling[-1]
  assert weights(directory, last, checkpoints.ROLLING_PREFIX)["Variable_1"] == last
  code, out, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="100000", load=last,
                         more="5", test_every="100000")
  assert code == 0, err
  assert "Loading model {}".format(checkpoints.path(directory, last, "rolling")) in out
  assert weights(directory, last + 5)["Variable_1"] == last + 5


@pytest.mark.parametrize("model", [{}, {"model": "generic", "tprnn_layers": "3"}])
@pytest.mark.slow
def test_exact_resume_equals_an_uninterrupted_run(h36m, tmp_path, model):
  """20 steps at once, or 10 steps then a resume for 10 (no --seed on the
  resume: it comes from flags.json): the same weights, checkpoint numbers and
  global steps."""
  flags = dict(model, iterations="20", test_every="100")
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path / "once", **flags)
  assert code == 0, err
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path / "twice", more="10", **flags)
  assert code == 0, err
  code, out, err = human(h36m, RECOVERY, train_dir=tmp_path / "twice", load="10", more="10",
                         seed=DROP, **flags)
  assert code == 0, err
  assert "Seed: {} (the resumed run's)".format(RECOVERY["--seed"]) in out
  once, twice = experiment_dir(tmp_path / "once"), experiment_dir(tmp_path / "twice")
  assert checkpoints.steps(once) == [20] and checkpoints.steps(twice) == [10, 20]
  a, b = weights(once, 20), weights(twice, 20)
  assert a["Variable_1"] == b["Variable_1"] == 20
  for name in a:
    np.testing.assert_allclose(b[name], a[name], atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_penn_resumes_exactly_and_refuses_a_used_directory(tmp_path):
  """The same plumbing for tprnn_train_penn.py, on small synthetic labels."""
  labels = tmp_path / "labels"
  labels.mkdir()
  for i, split in enumerate((1, 1, -1), 1):
    write_penn_label(labels / "{:04d}.mat".format(i), frames=60, train=split, seed=i)
  base = {"--rnn_size": "8", "--iterations": "20", "--test_every": "100", "--seed": "5"}

  def run(train_dir, **flags):
    return penn(labels, base, train_dir=tmp_path / train_dir, **flags)

  assert run("once")[0] == 0
  assert run("twice", more="10")[0] == 0
  code, _, err = run("twice", load="10", more="10")
  assert code == 0, err
  a, b = (weights(experiment_dir(tmp_path / d), 20) for d in ("once", "twice"))
  for name in a:
    np.testing.assert_allclose(b[name], a[name], atol=1e-6, err_msg=name)
  code, _, err = run("once")
  assert code == 1 and "already holds checkpoints (20): the run is complete; evaluate it with: " \
      "python tprnn_train_penn.py --experiment_dir {} --load 20 --sample".format(
          experiment_dir(tmp_path / "once")) in err


# ----------------------------------------------------------------------------
# One run per directory


@pytest.mark.slow
def test_second_run_is_refused_while_the_first_holds_the_lock(processes, h36m, tmp_path):
  first = start(processes, h36m, tmp_path)
  read_until(first, r"^step 0000")
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="100000",
                       test_every="100000")
  assert code == 1
  (line,) = error_lines(err)
  assert re.search(r"is in use by another run \(pid {} on \S+ since [0-9: -]+: .*tprnn_train_human"
                   r"\.py .*\); wait for it to end or stop it$".format(first.pid), line), line
  first.kill()  # a dead holder's lock is stale: it blocks nothing
  first.wait()
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="100000",
                       test_every="100000", more="3")
  assert code == 0, err


@pytest.mark.slow
def test_fresh_run_into_a_used_directory_is_refused_unless_overwrite(h36m, tmp_path):
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="20")
  assert code == 0, err
  directory = experiment_dir(tmp_path)
  before = sorted(os.listdir(directory))
  code, _, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="20")
  assert code == 1
  assert err == ("error: {0} already holds checkpoints (10, 20): the run is complete; evaluate it "
                 "with: python tprnn_train_human.py --experiment_dir {0} --load 20 --sample; or "
                 "pass --overwrite to delete them and start afresh\n".format(directory))
  assert sorted(os.listdir(directory)) == before
  code, out, err = human(h36m, RECOVERY, train_dir=tmp_path, iterations="20", more="3",
                         overwrite=None)
  assert code == 0, err
  assert checkpoints.steps(directory) == [3]
  for log in ("train", "test"):
    assert len(os.listdir(os.path.join(directory, "log", log))) <= 1
