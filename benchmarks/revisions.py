"""Another git revision of this repository beside the working tree: its
checkout (a git worktree) and a worker process that builds and runs model
graphs with a tree's own code (benchmarks/graph_worker.py), so two versions
of the code are timed or compared back to back from one process."""

import contextlib
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "benchmarks", "graph_worker.py")


def call(argv, cwd):
  """Runs argv in a new process (without PYTHONPATH); its stdout. Fails with its stderr."""
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True)
  if done.returncode:
    raise SystemExit("{} failed:\n{}".format(" ".join(argv), done.stderr))
  return done.stdout


def short_hash(revision):
  """The abbreviated commit hash of `revision`."""
  return call(["git", "rev-parse", "--short", revision + "^{commit}"], ROOT).strip()


def has_revision(revision):
  """Whether git can check out `revision` here (not in a shallow clone that lacks it)."""
  done = subprocess.run(["git", "cat-file", "-e", revision + "^{commit}"], cwd=ROOT,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  return done.returncode == 0


@contextlib.contextmanager
def worktree(revision):
  """A checkout of `revision` in a temporary folder (git worktree add), removed on exit."""
  with tempfile.TemporaryDirectory(prefix="revision-") as tmp:
    path = os.path.join(tmp, short_hash(revision))
    call(["git", "worktree", "add", "--detach", path, revision], ROOT)
    try:
      yield path
    finally:
      for argv in (["git", "worktree", "remove", "--force", path], ["git", "worktree", "prune"]):
        subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


class Worker(object):
  """graph_worker.py running the code of `tree`: request(dict) -> dict, one
  JSON line each way. Stopped by close() (its PID), also on an error."""

  def __init__(self, tree, threads=None):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if threads:
      env.update(TF_NUM_INTRAOP_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    self.tree = tree
    self.process = subprocess.Popen([sys.executable, WORKER, tree], cwd=tree, env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    universal_newlines=True)

  def request(self, **message):
    """Sends `message` as one JSON line; the worker's reply, decoded."""
    try:
      self.process.stdin.write(json.dumps(message) + "\n")
      self.process.stdin.flush()
      line = self.process.stdout.readline()
    except BrokenPipeError:
      line = ""
    if not line:
      raise RuntimeError("graph_worker.py of {} ended (exit {}); its error is above".format(
          self.tree, self.process.wait()))
    return json.loads(line)

  def close(self):
    if self.process.poll() is None:
      self.process.kill()
    self.process.wait()
    self.process.stdin.close()
    self.process.stdout.close()

  def __enter__(self):
    return self

  def __exit__(self, *unused):
    self.close()
