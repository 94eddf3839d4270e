"""What a training script runs, for any dataset module (tprnn.datasets):
training on this worker, --sample of a checkpoint, or the zero-velocity
baseline. The dataset supplies data and evaluation; everything that runs a
model is here and in graph.py and loop.py."""

import contextlib
import os

from tprnn import config
from tprnn.parallel import backends
from tprnn.parallel import cluster
from tprnn.parallel import launch
from tprnn.training import rundir
from tprnn.training import seeds
from tprnn.training.graph import build_model, initialize_or_restore, open_session, predictor
from tprnn.training.loop import Loop
from tprnn.util import devices


def parse(dataset, script, argv):
  """The run's Config, without its device and workers (see with_runtime)."""
  return config.parse(dataset, script, argv, rundir.read_flags)


def main(dataset, script, argv):
  """The command line of training script `script` for `dataset`."""
  flags = parse(dataset, script, argv)
  directory = rundir.experiment_dir(flags, *dataset.directory_parts(flags))
  workers = cluster.resolve(flags)
  with quiet_unless_rank0(workers.rank):
    flags = with_runtime(flags, workers)
    if flags.workers > 1:
      return launch.launch(script, argv, flags.workers)
    if flags.model == config.ZERO_VELOCITY:
      return dataset.zero_velocity(flags)
    if flags.sample:
      return sample(flags, dataset, directory)
    return train(flags, dataset, directory)


def with_runtime(flags, workers=None):
  """`flags` with the device Placement and the Cluster of workers (`workers`,
  else resolved here) they and the environment ask for (probing the GPU and
  npu_bridge)."""
  workers = workers or cluster.resolve(flags)
  placement = None
  if flags.model != config.ZERO_VELOCITY:
    placement = devices.resolve("cpu" if flags.use_cpu else flags.device, flags.mixed_precision,
                                flags.precision_mode, flags.xla)
  cluster.check_run(workers, flags, placement)
  return flags.replace(placement=placement, cluster=workers)


@contextlib.contextmanager
def quiet_unless_rank0(rank):
  """Only rank 0 prints."""
  if rank == 0:
    yield
    return
  with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
    yield


def print_header(flags):
  print(devices.describe(flags.placement))
  print(cluster.describe(flags.cluster))


def train(flags, dataset, directory):
  """Trains the model of `flags` on this worker: rank 0 holds the experiment
  directory's lock throughout, resolves the seed, records the flags and the
  normalisation; every worker trains on its slice of one global batch of
  workers x batch_size. Returns the exit status."""
  task = dataset.training_task(flags)
  print("Experiment directory: {}".format(directory))
  print_header(flags)
  backend = backends.make(flags.cluster, flags.placement)
  if backend.rank != 0:
    return run_training(flags, task, directory, backend, flags.seed, None)
  checkpoint = rundir.find_checkpoint(flags, directory) if flags.load > 0 else None
  with rundir.locked(directory):
    rundir.claim_for_training(flags, directory)
    recorded = rundir.read_flags(directory) if flags.load > 0 else None
    seed = seeds.resolve(flags.seed, recorded and recorded.get("seed"))
    if task.normalisation is not None and flags.load > 0:
      rundir.check_normalisation(directory, task.normalisation)
    rundir.write_flags(directory, rundir.recordable(flags, seed))
    if task.normalisation is not None:
      rundir.write_normalisation(directory, task.normalisation)
    return run_training(flags, task, directory, backend, seed, checkpoint)


def run_training(flags, task, directory, backend, seed, checkpoint):
  """`seed` is rank 0's; elsewhere --seed or None, and rank 0's arrives by
  broadcast, as do its initial or restored weights."""
  net = build_model(flags, task.input_size, flags.seq_length_in,
                    seeds.graph_seed(seed, backend.rank), backend)
  with open_session(flags.placement, net.graph, backend) as sess:
    initialize_or_restore(sess, net, checkpoint, flags.load)
    if net.broadcast is not None:
      backend.run(sess, net.broadcast)
    seed = backend.share_seed(sess, seed)  # every worker draws the batches of rank 0's seed

    def batch(step):
      return worker_batch(task.next_batch, seeds.batch_rng(seed, step), flags.batch_size, backend)

    return Loop(sess, net, backend, flags, directory, seed, checkpoint, batch,
                task.evaluate).run()


def worker_batch(next_batch, rng, batch_size, backend):
  """This worker's slice of the global batch drawn with `rng`."""
  mine = slice(backend.rank * batch_size, (backend.rank + 1) * batch_size)
  return [feed[mine] for feed in next_batch(rng, batch_size * backend.size)]


def sample(flags, dataset, directory):
  """Restores checkpoint --load and runs the dataset's --sample evaluation,
  holding the experiment directory's lock; normalises as the run did."""
  checkpoint = rundir.find_checkpoint(flags, directory)
  task = dataset.sampling_task(flags, rundir.read_normalisation(directory))
  print("Experiment directory: {}".format(directory))
  print_header(flags)
  with rundir.locked(directory):
    net = build_model(flags, task.input_size, task.source_len, 0, training=False)
    with open_session(flags.placement, net.graph) as sess:
      initialize_or_restore(sess, net, checkpoint, flags.load)
      return task.evaluate(predictor(sess, net.model))
