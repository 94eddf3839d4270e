"""The roll-out against the per-call graph of 40a532e, from before the
encoder was batched over time: each revision's own code in its own process
(benchmarks/graph_worker.py) trains 20 steps from the same weights on the
same batches, H3.6M poses with an encoder of 11 calls at a tiny size
(benchmarks/same_numbers.py compares the real size)."""

import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import revisions  # noqa: E402
import same_numbers  # noqa: E402

BASELINE = "40a532e"


@pytest.fixture
def workers():
  """Workers running this tree's code and the baseline's (a git worktree)."""
  if not revisions.has_revision(BASELINE):
    pytest.skip("{} is not in this clone's history (a shallow clone?)".format(BASELINE))
  with revisions.worktree(BASELINE) as tree, revisions.Worker(ROOT, threads=1) as ours, \
      revisions.Worker(tree, threads=1) as theirs:
    yield ours, theirs


@pytest.mark.slow
def test_training_steps_equal_the_per_call_graph(workers, tmp_path):
  """One test for all models: one worktree and two workers, on one xdist worker."""
  feeds = str(tmp_path / "feeds.npz")
  same_numbers.write_feeds(feeds, 20, 4, config="short")
  for model in same_numbers.MODELS:
    ours, nudged = same_numbers.differences(workers, model, ("short", 16, 4), feeds, str(tmp_path))
    assert ours.gradient < 1e-5, model
    assert ours.losses[-1] != pytest.approx(ours.losses[0], rel=1e-2), model  # it trains
    # Adam parts ways on rounding alone (see same_numbers): no further than the
    # baseline does from weights nudged by 3e-7
    assert ours.loss < max(1e-5, nudged.loss), model
    assert ours.weight < max(1e-5, nudged.weight), model
    if model == "basic":
      assert max(ours.loss, ours.weight) < 1e-5
