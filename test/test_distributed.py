"""Data-parallel training on TensorFlow's collectives: N workers x batch B
against one process x batch N*B, the broadcast of weights and seed, lost and
frozen peers, Ctrl-C, resuming across worker counts, both scripts end to end
and the launcher. Every cluster is on 127.0.0.1. The NPU backend is tested
against Ascend's real adapter in test_ascend_distributed.py."""

import os
import re
import signal
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from tprnn.training import checkpoints
from tprnn.parallel import backends
from tprnn.training import graph
from tprnn.training import run
from tprnn.parallel import launch
import tprnn_train_human
from conftest import (H36M_DIR, HUMAN_SCRIPT as HUMAN, PENN_SCRIPT as PENN, TINY, alive,
                      assert_two_workers_equal_one_process,
                      argv_of, checkpoint_dirs, error_lines, launcher_run, losses, need, penn_labels,
                      read_until, run_script, weights)
from test_penn import LINE as PENN_METRICS


@pytest.mark.slow
def test_two_workers_equal_one_process_with_twice_the_batch(processes, h36m, tmp_path):
  """The basic model here, the generic one in test_cmu.py."""
  flags = dict(TINY, **{"--data_dir": h36m, "--model": "basic", "--max_gradient_norm": "0.05"})
  assert_two_workers_equal_one_process(processes, HUMAN, flags, tmp_path)


@pytest.mark.slow
def test_broadcast_gives_every_worker_rank0_weights_and_seed():
  """Two workers in one process (threads), built with different seeds, rank 1
  without --seed: after the broadcast every variable equals rank 0's, ints
  included, and both hold rank 0's seed (above 2^31, as --seed allows)."""
  hosts = ["127.0.0.1:{}".format(p) for p in launch.free_ports(2)]
  results, seeds, errors = {}, {}, []

  def worker(rank):
    try:
      flags = run.with_runtime(tprnn_train_human.parse_flags(argv_of(dict(
          {k: v for k, v in TINY.items() if rank == 0 or k != "--seed"}, **{
              "--worker_hosts": ",".join(hosts), "--task_index": str(rank), "--device": "cpu"}))))
      backend = backends.make(flags.cluster, flags.placement)
      net = graph.build_model(flags, 54, 10, seed=100 + rank, backend=backend)
      with graph.open_session(flags.placement, net.graph, backend) as sess:
        sess.run(tf.variables_initializer(net.graph.get_collection("variables")))
        net.model.global_step.load(10 * rank + 3, sess)
        before = sess.run(net.graph.get_collection("variables"))
        backend.run(sess, net.broadcast)
        results[rank] = before, sess.run(net.graph.get_collection("variables"))
        seeds[rank] = backend.share_seed(sess, 4000000007 if rank == 0 else None)
    except Exception as e:  # reported by the main thread
      errors.append(e)

  threads = [threading.Thread(target=worker, args=(r,)) for r in (0, 1)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(120)
  assert not errors, errors
  (before0, after0), (before1, after1) = results[0], results[1]
  assert any(not np.array_equal(a, b) for a, b in zip(before0, before1))
  for a, b, mine in zip(after0, after1, before0):
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(a, mine)
  assert 3 in [int(v) for v in after1
               if np.ndim(v) == 0 and np.issubdtype(np.asarray(v).dtype, np.integer)]
  assert seeds == {0: 4000000007, 1: 4000000007}


def start_workers(processes, script, flags, count=2):
  """`count` worker processes of a loopback cluster, started by the test."""
  hosts = ",".join("127.0.0.1:{}".format(p) for p in launch.free_ports(count))
  return [processes.start([sys.executable, script] + argv_of(dict(flags, **{
      "--worker_hosts": hosts, "--task_index": str(rank)}))) for rank in range(count)]


LONG_RUN = {"--iterations": "100000", "--test_every": "10", "--save_every": "10",
            "--dist_timeout_s": "8"}


@pytest.mark.slow
def test_killed_worker_stops_the_other_and_the_run_resumes_with_any_worker_count(
    processes, h36m, tmp_path):
  flags = dict(TINY, **LONG_RUN)
  flags.update({"--data_dir": h36m, "--train_dir": str(tmp_path), "--batch_size": "4"})
  rank0, rank1 = start_workers(processes, HUMAN, flags)
  read_until(rank0, r"Saving the model")
  read_until(rank0, r"^done in")
  rank1.kill()
  killed = time.time()
  rank0.wait(timeout=8 + 20)
  assert time.time() - killed < 8 + 10
  assert rank0.returncode == 1
  (line,) = error_lines(rank0.stderr.read())
  found = re.match(r"error: lost worker 1 \(127\.0\.0\.1:\d+\) \(\w+\); worker 0 stops "
                   r"\(last good checkpoint: (\S+)-(\d+)\)$", line)
  assert found, line
  directory, last = os.path.dirname(found.group(1)), int(found.group(2))
  assert last >= 10 and set(weights(directory, last))
  assert not [f for f in os.listdir(directory) if "tmp" in f]

  resume = dict(flags, **{"--load": str(last), "--more": "5", "--iterations": "100000",
                          "--test_every": "1000"})
  code, out, err = launcher_run(processes, HUMAN, resume)  # 2 workers -> 1 process
  assert code == 0, err
  after = last + 5
  assert weights(directory, after)["Variable_1"] == after
  code, out, err = launcher_run(processes, HUMAN, dict(resume, **{  # 1 process -> 2 workers
      "--load": str(after), "--more": "3", "--workers": "2"}))
  assert code == 0, err
  assert weights(directory, after + 3)["Variable_1"] == after + 3


@pytest.mark.slow
def test_frozen_worker_stops_the_other_within_the_timeout(processes, h36m, tmp_path):
  flags = dict(TINY, **LONG_RUN)
  flags.update({"--data_dir": h36m, "--train_dir": str(tmp_path), "--dist_timeout_s": "5"})
  rank0, rank1 = start_workers(processes, HUMAN, flags)
  read_until(rank0, r"^step 0020")
  os.kill(rank1.pid, signal.SIGSTOP)
  frozen = time.time()
  rank0.wait(timeout=5 + 25)
  assert time.time() - frozen < 5 + 10
  (line,) = error_lines(rank0.stderr.read())
  assert re.match(r"error: no answer from worker 1 \(127\.0\.0\.1:\d+\) within 5 s "
                  r"\(--dist_timeout_s\): a peer is frozen or gone; worker 0 stops "
                  r"\(last good checkpoint: \S+checkpoint-\d+\)$", line), line


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_at_one_step_and_rank0_saves(processes, h36m, tmp_path):
  flags = dict(TINY, **{"--data_dir": h36m, "--train_dir": str(tmp_path), "--workers": "2",
                        "--iterations": "100000", "--test_every": "100000"})
  launcher = processes.start([sys.executable, HUMAN] + argv_of(flags))
  head = read_until(launcher, r"^step 0020")
  processes.worker_pids += [int(p) for p in re.search(r"pids ([0-9 ]+)\)", head).group(1).split()]
  code, _, err = run_script(tprnn_train_human, argv_of(dict(flags, **{"--workers": "1"})))
  assert code == 1 and "in use by another run (pid {} ".format(processes.worker_pids[0]) in err
  launcher.send_signal(signal.SIGINT)
  out, err = launcher.communicate(timeout=60)
  assert launcher.returncode == 128 + signal.SIGINT, err
  step = int(re.search(r"Interrupted at step (\d+); resume with: python \S+ --experiment_dir \S+ "
                       r"--load \1 --more \d+", out).group(1))
  assert "Interrupted: all 2 workers stopped" in out
  (directory,) = checkpoint_dirs(str(tmp_path))
  assert weights(directory, step)["Variable_1"] == step
  assert not any(alive(pid) for pid in processes.worker_pids)
  # resuming with --workers and no --seed draws the batches of the run's seed
  resume = {k: v for k, v in flags.items() if k != "--seed"}
  code, out, err = launcher_run(processes, HUMAN, dict(resume, **{"--load": str(step),
                                                                  "--more": "2"}))
  assert code == 0, err
  assert "Seed: {} (the resumed run's)".format(TINY["--seed"]) in out
  assert weights(directory, step + 2)["Variable_1"] == step + 2


@pytest.mark.slow
def test_human_script_with_two_workers_on_shared_data(processes, tmp_path):
  need(H36M_DIR)
  flags = dict(TINY, **{"--data_dir": H36M_DIR, "--train_dir": str(tmp_path), "--workers": "2",
                        "--iterations": "20", "--test_every": "10", "--save_every": "10"})
  code, out, err = launcher_run(processes, HUMAN, flags)
  assert code == 0, err
  assert [s for s, _ in losses(out)] == ["0000", "0010"]  # printed once: rank 0 alone
  assert out.count("Global step:") == 2
  (directory,) = checkpoint_dirs(str(tmp_path))
  assert checkpoints.steps(directory) == [10, 20]
  for log in ("train", "test"):
    assert len(os.listdir(os.path.join(directory, "log", log))) == 1


@pytest.mark.slow
def test_penn_script_with_two_workers_on_shared_labels(processes, tmp_path):
  """Same seed: 2 workers x batch 4 print the losses and validation metrics of 1 process x batch 8
  and save its weights (clipping active, as in assert_two_workers_equal_one_process); rank 0 alone
  prints, saves and logs."""
  labels = penn_labels(tmp_path / "labels", range(1, 25))
  flags = {"--data_dir": labels, "--rnn_size": "8", "--iterations": "20", "--test_every": "10",
           "--save_every": "10", "--seed": "3", "--max_gradient_norm": "0.05"}
  code, single, err = launcher_run(processes, PENN, dict(flags, **{
      "--batch_size": "8", "--train_dir": str(tmp_path / "one")}))
  assert code == 0, err
  code, double, err = launcher_run(processes, PENN, dict(flags, **{
      "--batch_size": "4", "--workers": "2", "--train_dir": str(tmp_path / "two")}))
  assert code == 0, err
  assert "Distributed: collective backend, worker 0 of 2" in double
  assert [s for s, _ in losses(single)] == ["0000", "0010"] and losses(double) == losses(single)
  one, two = (np.array(PENN_METRICS.findall(out), dtype=float) for out in (single, double))
  assert one.shape == (32, 5) and list(one[:, 0]) == list(range(1, 17)) * 2  # steps 10 and 20
  assert np.all((one[:, 3:] > 0) & (one[:, 3:] <= 1))  # both PCKs
  np.testing.assert_allclose(two, one, rtol=0, atol=1.01e-6)  # %f: one unit of the 6th decimal
  (one_dir,), (two_dir,) = checkpoint_dirs(str(tmp_path / "one")), checkpoint_dirs(str(tmp_path / "two"))
  assert two_dir.endswith("zero_init_velocity")
  assert checkpoints.steps(two_dir) == [10, 20]
  for step in (10, 20):
    expected, found = weights(one_dir, step), weights(two_dir, step)
    assert sorted(found) == sorted(expected)
    for name in expected:
      np.testing.assert_allclose(found[name], expected[name], atol=1e-5, err_msg=name)
  for log in ("train", "test"):
    assert len(os.listdir(os.path.join(two_dir, "log", log))) == 1


STAND_IN_WORKER = """
import sys, time
rank = int(sys.argv[sys.argv.index("--task_index") + 1])
print("worker", rank, "argv", " ".join(sys.argv[1:]), flush=True)
if rank == 1:
  time.sleep(0.5)
  sys.exit(3)
time.sleep(120)
"""


def test_launcher_stops_every_worker_when_one_fails(tmp_path, capsys):
  script = tmp_path / "worker_stand_in.py"
  script.write_text(STAND_IN_WORKER)
  start = time.time()
  code = launch.launch(str(script), ["--rnn_size", "8", "--workers", "2", "--seed=4"], 2)
  assert code == 1 and time.time() - start < 20
  out, err = capsys.readouterr()
  pids = [int(p) for p in re.search(r"pids ([0-9 ]+)\)", out).group(1).split()]
  assert len(pids) == 2 and not any(os.path.exists("/proc/{}".format(p)) for p in pids)
  assert "error: worker 1 exited with status 3; stopped all 2 workers" in err


def test_worker_flags_replace_the_users():
  argv = ["--rnn_size", "8", "--workers", "2", "--seed=4", "--task_index", "5", "--sample"]
  assert launch.without_flags(argv, ("--workers", "--seed", "--task_index")) == [
      "--rnn_size", "8", "--sample"]
  commands = launch.worker_commands("s.py", argv, ["127.0.0.1:1", "127.0.0.1:2"])
  assert [c[2:] for c in commands] == [
      ["--rnn_size", "8", "--seed=4", "--sample", "--worker_hosts", "127.0.0.1:1,127.0.0.1:2",
       "--task_index", str(rank)] for rank in (0, 1)]


@pytest.mark.parametrize("flags,message", [
    ({"--worker_hosts": "127.0.0.1:1,127.0.0.1:2"},
     "--dist collective needs --task_index (or $RANK_ID)"),
    ({"--worker_hosts": "127.0.0.1:1,localhost", "--task_index": "0"},
     "--worker_hosts: 'localhost' is not host:port"),
    ({"--worker_hosts": "127.0.0.1:1,127.0.0.1:2", "--task_index": "2"},
     "--task_index 2 is not a position in --worker_hosts (0..1)"),
    ({"--worker_hosts": "127.0.0.1:1", "--dist": "none"},
     "--worker_hosts needs --dist collective (or auto), not --dist none"),
    ({"--dist": "collective"}, "--dist collective needs --worker_hosts host:port,host:port,..."),
    ({"--dist": "mpi"}, "unknown --dist 'mpi': expected one of auto, none, collective, npu"),
    ({"--workers": "2", "--dist": "none"}, "--workers 2 starts its own local collective workers"),
    ({"--workers": "2", "--sample": None, "--load": "5"},
     "--sample and --model zero_velocity run in one process"),
    ({"--workers": "0"}, "--workers must be at least 1, got 0"),
    ({"--dist_timeout_s": "0"}, "--dist_timeout_s must be positive, got 0.0"),
])


def test_bad_distribution_flags(flags, message, monkeypatch):
  monkeypatch.delenv("RANK_ID", raising=False)
  code, _, err = run_script(tprnn_train_human, ["--data_dir", "nowhere"] + argv_of(dict(
      {"--seed": "1"}, **flags)))
  assert code == 1 and err.count("\n") == 1 and message in err, err
