"""CMU-Mocap exponential-map poses (docs/PROTOCOL.md §9): the dataset behind
tprnn_train_cmu.py, the release of Li et al. (CVPR 2018) that LTD, DMGNN,
MSR-GCN and PGBIG use, evaluated on the test windows of --eval_protocol."""

import os

import numpy as np

import data_utils
from tprnn.datasets import cmu_skeleton, expmap
from tprnn.datasets import base
from tprnn.datasets.base import SamplingTask, TrainingTask
from tprnn.evaluation import cmu_windows, srnn
from tprnn.evaluation.baseline import zero_velocity_predict
from tprnn.util.errors import UsageError
from tprnn.util.progress import progress

NAME = "cmu"
DESCRIPTION = "Train or evaluate a TP-RNN on CMU-Mocap exponential-map poses (docs/PROTOCOL.md §9)."
DEFAULTS = {"data_dir": "./data/cmu_mocap", "seq_length_in": 50, "seq_length_out": 25}
ACTIONS = ("basketball", "basketball_signal", "directing_traffic", "jumping", "running",
           "soccer", "walking", "washwindow")  # LTD's order
TRAIN_FILES, TEST_FILES = 5, 1  # {split}/{action}/{action}_{1..n}.txt of the release
POSE_DIM = cmu_skeleton.POSE_DIM
FRAMES_PER_SECOND = 25  # as every code base labels the frames kept (every second one)
FORECAST_STRIDE = 2
DATA_README = "data/README.md"

POSITION_TABLES = (("mpjpe", "MPJPE (mm, all 38 joints, root-relative, at each horizon)",
                    cmu_skeleton.mpjpe),)
EULER_MASK = "all"  # LTD scores every entry (docs/PROTOCOL.md §9)


def add_flags(parser):
  parser.add_argument("--action", default="all",
                      help="A CMU-Mocap action, several joined by commas (walking,running) or "
                           "'all' (8).")
  parser.add_argument("--eval_protocol", default="8",
                      help="Test windows: 8 (ConvSeq2Seq / LTD), 256 (the same draws "
                           "continued) or all (every window, stride 1).")


def derived_flags(flags):
  return {"actions": data_utils.define_actions(flags.action, ACTIONS, {"all": ACTIONS})}


def check_flags(flags):
  if flags.eval_protocol not in cmu_windows.PROTOCOLS:
    raise UsageError("unknown --eval_protocol '{}': expected one of {}".format(
        flags.eval_protocol, ", ".join(cmu_windows.PROTOCOLS)))
  if not 2 <= flags.seq_length_out <= cmu_windows.DRAW_SPAN - cmu_windows.OBSERVED:
    raise UsageError("--seq_length_out {}: the CMU-Mocap test windows hold 2 to {} predicted "
                     "frames".format(flags.seq_length_out,
                                     cmu_windows.DRAW_SPAN - cmu_windows.OBSERVED))
  if flags.seq_length_in > cmu_windows.OBSERVED:
    raise UsageError("--seq_length_in {}: the CMU-Mocap test windows observe {} frames, the "
                     "most the model can see".format(flags.seq_length_in, cmu_windows.OBSERVED))


def directory_parts(flags):
  return [flags.dataset, flags.action], []


# ----------------------------------------------------------------------------
# Files


def file_path(data_dir, split, action, index):
  return os.path.join(data_dir, split, action, "{}_{}.txt".format(action, index))


def files_of(data_dir, action):
  """Every file of `action`: its 5 training and 1 test sequences."""
  return ([file_path(data_dir, "train", action, i) for i in range(1, TRAIN_FILES + 1)] +
          [file_path(data_dir, "test", action, i) for i in range(1, TEST_FILES + 1)])


def check_files(data_dir, actions):
  """A missing file is an error naming it and the actions complete in data_dir."""
  data_utils.check_data_folder(data_dir, "data directory", "train", "cmu_mocap")
  missing = [p for a in actions for p in files_of(data_dir, a) if not os.path.isfile(p)]
  if not missing:
    return
  complete = [a for a in ACTIONS if all(os.path.isfile(p) for p in files_of(data_dir, a))]
  raise data_utils.DataError("missing CMU-Mocap file {} (see {}); the actions complete in {}: {}"
                             .format(missing[0], DATA_README, data_dir,
                                     "--action " + ",".join(complete) if complete else "none"))


def read_split(data_dir, split, actions, count):
  """({(action, i): [T/2, 117] every second frame}, [sum T, 117] all frames)."""
  keys = [(a, i) for a in actions for i in range(1, count + 1)]
  sequences, full_rate = {}, []
  for action, i in progress(keys, len(keys), "Reading CMU-Mocap " + split, "file"):
    frames = data_utils.read_sequence(file_path(data_dir, split, action, i), POSE_DIM)
    sequences[(action, i)] = frames[::2]
    full_rate.append(frames)
  return sequences, np.concatenate(full_rate, axis=0)


def read_data(flags, normalisation=None):
  """Training and test sequences normalised with the statistics of the
  training files' frames (all of them, as on H3.6M); with a run's stored
  `normalisation`, the test sequences alone."""
  check_files(flags.data_dir, flags.actions)
  train = {}
  if normalisation is None:
    train, full_rate = read_split(flags.data_dir, "train", flags.actions, TRAIN_FILES)
    mean, std, _, dim_to_use = data_utils.normalization_stats(full_rate)
  else:
    mean, std, dim_to_use = (normalisation[k] for k in ("mean", "std", "dim_to_use"))
  test, _ = read_split(flags.data_dir, "test", flags.actions, TEST_FILES)
  print("Read {} training and {} test sequences from {}".format(
      len(train), len(test), flags.data_dir))
  return data_utils.Dataset(data_utils.normalize(train, mean, std, dim_to_use),
                            data_utils.normalize(test, mean, std, dim_to_use),
                            mean, std, dim_to_use)


def check_lengths(flags, data):
  """Every training sequence must hold a training window and every test
  sequence the protocol's windows."""
  window = flags.seq_length_in + flags.seq_length_out
  if data.train:
    (action, i), seq = min(data.train.items(), key=lambda kv: len(kv[1]))
    if len(seq) < window:
      raise UsageError("--seq_length_in {} + --seq_length_out {} = {} frames do not fit the "
                       "shortest training sequence ({}: {} frames after down-sampling)".format(
                           flags.seq_length_in, flags.seq_length_out, window,
                           file_path(flags.data_dir, "train", action, i), len(seq)))
  need = cmu_windows.shortest_sequence(flags.seq_length_out, flags.eval_protocol)
  for (action, i), seq in data.test.items():
    if len(seq) < need:
      raise UsageError("{} has {} frames after down-sampling; --eval_protocol {} needs {}".format(
          file_path(flags.data_dir, "test", action, i), len(seq), flags.eval_protocol, need))


def window_test(flags, data):
  """The srnn.WindowTest of --eval_protocol's windows on each action's test sequence."""
  windows = {action: cmu_windows.windows(data.test[(action, 1)], flags.seq_length_in,
                                         flags.seq_length_out, flags.eval_protocol)
             for action in flags.actions}
  return srnn.WindowTest(data, windows, flags.seq_length_in, flags.seq_length_out,
                         flags.eval_protocol, "the test files")


# ----------------------------------------------------------------------------
# Training, --sample and the baseline


def training_task(flags):
  data = read_data(flags)
  check_lengths(flags, data)
  test = window_test(flags, data)
  window = flags.seq_length_in + flags.seq_length_out

  def next_batch(rng, batch_size, sequences=data.train):
    """Windows of a random sequence from a random first frame, the last included."""
    keys = sorted(sequences)
    starts = [(keys[k], rng.randint(0, len(sequences[keys[k]]) - window + 1))
              for k in rng.choice(len(keys), batch_size)]
    windows = np.stack([sequences[key][s:s + window] for key, s in starts])
    return data_utils.split_windows(windows, flags.seq_length_in)

  def validation_batch(rng):
    return next_batch(rng, flags.batch_size, data.test)

  evaluate = expmap.training_evaluation(test, validation_batch, flags.eval_protocol, EULER_MASK)
  return TrainingTask(len(data.dim_to_use), expmap.stats_of(data), next_batch, evaluate)


def report(flags, test, predict):
  """The Euler and MPJPE tables of `predict` on `test`; with --sample, the
  original's lines and the samples file."""
  mean_errors, predictions, _ = test.evaluate(predict, EULER_MASK)
  model = base.model_name(flags)
  srnn.print_table(mean_errors, flags.seq_length_out, title=test.title(expmap.EULER, model))
  if not flags.sample:
    expmap.print_position_tables(POSITION_TABLES, test, predictions, model)
    return
  srnn.print_sample_results(mean_errors, flags.seq_length_out)
  expmap.report_samples(flags.samples_file, POSITION_TABLES, test, mean_errors, predictions,
                        dict(base.samples_attributes(flags, test.source), dataset=NAME))


def sampling_task(flags, normalisation):
  """Every action on the windows of --eval_protocol; writes the samples file."""
  data = read_data(flags, normalisation)
  check_lengths(flags, data)
  test = window_test(flags, data)
  return SamplingTask(len(data.dim_to_use), flags.seq_length_in,
                      lambda predict: report(flags, test, predict))


def zero_velocity(flags):
  """The baseline's tables (and with --sample its samples file)."""
  data = read_data(flags)
  check_lengths(flags, data)
  report(flags, window_test(flags, data), zero_velocity_predict)


# ----------------------------------------------------------------------------
# Export and forecast: raw exp-map frames in and out


def normalisation_of_run(flags, stored):
  """The run's stored statistics, else those of its training data, recomputed."""
  return stored if stored is not None else expmap.stats_of(read_data(flags))


def inference_shape(flags, normalisation):
  """(input size P, source length) of the exported model."""
  return len(normalisation["dim_to_use"]), flags.seq_length_in


def inference_graph(flags, run_model, normalisation, batch):
  """observed [N, in, 117] exp-map frames -> forecast [N, out, 117]."""
  return expmap.inference_graph(run_model, normalisation, batch, flags.seq_length_in,
                                flags.seq_length_out, POSE_DIM)


def add_forecast_args(parser):
  """CMU-Mocap needs none beyond forecast.py's own."""


def forecast_frames(poses):
  """[T, 117] exp-map frames of a [T, 117] input, else None."""
  return expmap.forecast_frames(poses, POSE_DIM)


FORECAST_INPUT = "117 exponential-map numbers a line, or a [T, 117] .npy"


def forecast_feeds(observed, args):
  return expmap.forecast_feeds(observed)


def forecast_rows(forecast):
  """[out, 117] -> text rows."""
  return forecast
