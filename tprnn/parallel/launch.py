"""--workers N: runs N worker processes of a training script on free loopback
ports (the collective backend) and supervises them. Ctrl-C or SIGTERM is
passed on to every worker, so they stop at the same step and rank 0 saves
(a second signal is passed on too, and changes nothing); a worker that fails
stops all the others."""

import contextlib
import os
import socket
import subprocess
import sys
import time

from tprnn.util import signals

POLL_SECS = 0.2
STOP_GRACE_SECS = 15  # after a failure, how long the others get to exit on SIGTERM
# Flags the launcher sets for each worker; a user's own values are dropped.
WORKER_FLAGS = ("--workers", "--worker_hosts", "--task_index")


def free_ports(count):
  """`count` distinct free TCP ports on 127.0.0.1."""
  with contextlib.ExitStack() as stack:
    sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
    for s in sockets:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in sockets]


def without_flags(argv, names):
  """argv less every `--name value` / `--name=value` of `names`."""
  kept, skip = [], False
  for arg in argv:
    if skip:
      skip = False
    elif arg in names:
      skip = True
    elif arg.split("=", 1)[0] not in names:
      kept.append(arg)
  return kept


def worker_commands(script, argv, hosts):
  """The command line of each worker: the user's flags, the cluster and its
  rank (the seed is rank 0's, which it sends to the others)."""
  base = [sys.executable, script] + without_flags(argv, WORKER_FLAGS)
  return [base + ["--worker_hosts", ",".join(hosts), "--task_index", str(rank)]
          for rank in range(len(hosts))]


def launch(script, argv, workers):
  """Starts the workers and waits for them. Returns the exit status: 0 when
  every worker succeeded, 1 when one failed, 128 + signal when interrupted."""
  hosts = ["127.0.0.1:{}".format(p) for p in free_ports(workers)]
  commands = worker_commands(script, argv, hosts)
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the workers' own one-line errors say enough
  procs = []
  try:
    with signals.Recorder() as received:
      for command in commands:
        procs.append(subprocess.Popen(command, env=env, start_new_session=True))
      print("Started {} workers on {} (pids {})".format(
          workers, ",".join(hosts), " ".join(str(p.pid) for p in procs)), flush=True)
      return _supervise(procs, received)
  finally:
    _kill(procs)


def _supervise(procs, received):
  forwarded = 0
  while True:
    for signum in received.received[forwarded:]:
      for p in procs:
        if p.poll() is None:
          p.send_signal(signum)
    forwarded = len(received.received)
    codes = [p.poll() for p in procs]
    failed = [(rank, c) for rank, c in enumerate(codes) if c not in (None, 0)]
    if failed and not forwarded:
      rank, code = failed[0]
      _stop(procs)
      print("error: worker {} exited with status {}; stopped all {} workers".format(
          rank, code, len(procs)), file=sys.stderr, flush=True)
      return 1
    if all(c is not None for c in codes):
      if forwarded:
        print("Interrupted: all {} workers stopped".format(len(procs)), flush=True)
        return 128 + received.received[0]
      return 0
    time.sleep(POLL_SECS)


def _stop(procs):
  """SIGTERM to the workers still running, SIGKILL to those that linger."""
  for p in procs:
    if p.poll() is None:
      p.terminate()
  deadline = time.time() + STOP_GRACE_SECS
  while time.time() < deadline and any(p.poll() is None for p in procs):
    time.sleep(POLL_SECS)
  _kill(procs)


def _kill(procs):
  for p in procs:
    if p.poll() is None:
      p.kill()
      p.wait()
