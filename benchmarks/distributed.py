"""Data-parallel training speed on this machine, in one run: a training step of
the basic model (Penn configuration) in 1 process and in N collective
workers on loopback, and the gradient all-reduce alone, fused into one
vector as the training step does it and as one all-reduce per tensor.

  python benchmarks/distributed.py                 # rnn_size 1024, batch 16 per worker
  python benchmarks/distributed.py --quick         # rnn_size 256, fewer steps

Prints ms/step, sequences/s (of the global batch) and the ratio to the
1-process run, and the all-reduce time per step. Each worker is a process of
this script, started on free 127.0.0.1 ports and stopped by its PID.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tprnn.parallel import backends  # noqa: E402
from tprnn.training import graph  # noqa: E402
from tprnn.training import run  # noqa: E402
from tprnn.parallel import launch  # noqa: E402
import load  # noqa: E402
import tprnn_train_penn  # noqa: E402
from step_time import median_ms  # noqa: E402

ALL_REDUCE_KEYS = 100  # instance keys of the benchmark's own all-reduces, clear of training's


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--quick", action="store_true", help="rnn_size 256, 5 steps")
  p.add_argument("--rnn_size", type=int, default=None)
  p.add_argument("--batch_size", type=int, default=16, help="per worker")
  p.add_argument("--workers", type=int, default=2)
  p.add_argument("--steps", type=int, default=None)
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--worker_hosts", default="", help=argparse.SUPPRESS)
  p.add_argument("--task_index", type=int, default=None, help=argparse.SUPPRESS)
  p.add_argument("--result", default="", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  args.rnn_size = args.rnn_size or (256 if args.quick else 1024)
  args.steps = args.steps or (5 if args.quick else 10)
  return args


def model_flags(args, batch_size, hosts=""):
  argv = ["--rnn_size", str(args.rnn_size), "--batch_size", str(batch_size), "--seed", "1",
          "--device", "cpu"]
  if hosts:
    argv += ["--worker_hosts", hosts, "--task_index", str(args.task_index)]
  return run.with_runtime(tprnn_train_penn.parse_flags(argv))


def time_training(args, batch_size, hosts=""):
  """Median ms of a training step of this worker (batch_size sequences), and
  with several workers the fused and per-tensor all-reduce of its gradients."""
  flags = model_flags(args, batch_size, hosts)
  backend = backends.make(flags.cluster, flags.placement)
  net = graph.build_model(flags, load.POSE_SIZE, flags.seq_length_in, 1, backend)
  with net.graph.as_default(), tf.device(backend.device()):
    params = [tf.zeros(v.shape) for v in tf.trainable_variables()]
    if backend.size > 1:  # the collective backend's all-reduce, fused and per tensor
      fused = backend.all_reduce_mean(params, ALL_REDUCE_KEYS)
      per_tensor = [backend.all_reduce_mean([p], ALL_REDUCE_KEYS + 1 + i)
                    for i, p in enumerate(params)]
  rng = np.random.RandomState(0)
  feeds = [rng.normal(0, 0.5, (batch_size, n, load.POSE_SIZE)).astype(np.float32)
           for n in (flags.seq_length_in - 1, flags.seq_length_out, flags.seq_length_out)]
  with graph.open_session(flags.placement, net.graph, backend) as sess:
    sess.run(tf.variables_initializer(net.graph.get_collection("variables")))
    if net.broadcast is not None:
      backend.run(sess, net.broadcast)
    feed = graph.feed_dict(net.model, *feeds)
    result = {"step_ms": median_ms(lambda: backend.run(sess, net.step, feed), args.steps, args.warmup),
              "parameters": int(sum(np.prod(p.shape.as_list()) for p in params))}
    if backend.size > 1:
      result["fused_ms"] = median_ms(lambda: backend.run(sess, fused), args.steps, args.warmup)
      result["per_tensor_ms"] = median_ms(lambda: backend.run(sess, per_tensor), args.steps,
                                          args.warmup)
  return result


def run_workers(args):
  """Times N workers, each a process of this script. Returns rank 0's result."""
  hosts = ["127.0.0.1:{}".format(p) for p in launch.free_ports(args.workers)]
  result = os.path.join(tempfile.mkdtemp(), "result.json")
  base = [sys.executable, os.path.abspath(__file__), "--rnn_size", str(args.rnn_size),
          "--batch_size", str(args.batch_size), "--steps", str(args.steps),
          "--warmup", str(args.warmup), "--worker_hosts", ",".join(hosts), "--result", result]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  procs = [subprocess.Popen(base + ["--task_index", str(rank)], env=env)
           for rank in range(args.workers)]
  try:
    codes = [p.wait(timeout=900) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  if any(codes):
    raise SystemExit("a worker failed (exit statuses {})".format(codes))
  with open(result) as f:
    return json.load(f)


def main(argv):
  args = parse_args(argv)
  if args.worker_hosts:  # one of run_workers' processes
    result = time_training(args, args.batch_size, args.worker_hosts)
    if args.task_index == 0:
      with open(args.result, "w") as f:
        json.dump(result, f)
    return
  print("Penn basic model, rnn_size {}, batch {} per worker, CPU, median of {} steps".format(
      args.rnn_size, args.batch_size, args.steps))
  rows = [("1 process", args.batch_size, time_training(args, args.batch_size)),
          ("1 process", args.workers * args.batch_size,
           time_training(args, args.workers * args.batch_size))]
  workers = run_workers(args)
  rows.append(("{} workers".format(args.workers), args.workers * args.batch_size, workers))
  base = rows[0][1] / rows[0][2]["step_ms"]
  print("| run | global batch | ms/step | sequences/s | vs 1 process |")
  print("|---|---:|---:|---:|---:|")
  for name, batch, r in rows:
    rate = batch / r["step_ms"]
    print("| {} | {} | {:.1f} | {:.1f} | {:.2f}x |".format(name, batch, r["step_ms"], rate * 1000,
                                                          rate / base))
  print("All-reduce of the {:,} gradient values between {} workers: fused (one vector, as "
        "training does) {:.1f} ms/step; one per tensor {:.1f} ms/step".format(
            workers["parameters"], args.workers, workers["fused_ms"], workers["per_tensor_ms"]))


if __name__ == "__main__":
  main(sys.argv[1:])
