"""H3.6M exponential-map poses (docs/PROTOCOL.md §1-3, §7-8): the dataset behind
tprnn_train_human.py, evaluated on the windows of --eval_protocol, of subject 5
(or, while training with --select_on validation, of subject 11)."""

import data_utils
from tprnn.datasets import expmap, h36m_skeleton
from tprnn.datasets import base
from tprnn.datasets.base import SamplingTask, TrainingTask
from tprnn.evaluation import srnn
from tprnn.evaluation.baseline import zero_velocity_predict
from tprnn.util.errors import UsageError

NAME = "human"
DESCRIPTION = "Train or evaluate a TP-RNN on H3.6M exponential-map poses (docs/PROTOCOL.md §1-3)."
DEFAULTS = {"data_dir": "./data/h3.6m/dataset", "seq_length_in": 50, "seq_length_out": 10}
SAMPLE_SOURCE_LEN = 50  # --sample always conditions on 50 frames, as the original
FRAMES_PER_SECOND = 25
FORECAST_STRIDE = 2  # the files are 50 Hz, the model 25 fps


# --select_on: (training subjects, the subject evaluated while training)
SELECT_ON = {"test": (data_utils.TRAIN_SUBJECTS, data_utils.TEST_SUBJECT),
             "validation": (data_utils.VALIDATION_TRAIN_SUBJECTS, data_utils.VALIDATION_SUBJECT)}


def add_flags(parser):
  parser.add_argument("--action", default="all",
                      help="An H3.6M action, several joined by commas (walking,eating), 'all' "
                           "(15) or 'all_srnn' (first four).")
  parser.add_argument("--eval_protocol", default="srnn8",
                      help="Test windows: srnn8 (the paper's 8 per action), 256 (the same "
                           "generator continued to 256) or all (every window, stride 1).")
  parser.add_argument("--select_on", default="test",
                      help="test (the original: evaluate and pick the best model on subject 5) "
                           "or validation (train on S1, S6, S7, S8, S9, evaluate on S11 while "
                           "training; subject 5 is left for --sample).")


def derived_flags(flags):
  return {"actions": data_utils.define_actions(flags.action)}


def check_flags(flags):
  if flags.seq_length_out < 2:
    raise UsageError("--seq_length_out must be at least 2: the error table starts at "
                     "80 ms, the second predicted frame")
  if flags.eval_protocol not in data_utils.PROTOCOLS:
    raise UsageError("unknown --eval_protocol '{}': expected one of {}".format(
        flags.eval_protocol, ", ".join(data_utils.PROTOCOLS)))
  if flags.select_on not in SELECT_ON:
    raise UsageError("unknown --select_on '{}': expected one of {}".format(
        flags.select_on, ", ".join(SELECT_ON)))


def directory_parts(flags):
  leaf = [] if flags.select_on == "test" else ["select_on_" + flags.select_on]
  return [flags.dataset, flags.action], leaf


def check_lengths(data, source_len, target_len, protocol="srnn8"):
  """Every training sequence must hold a window starting at frame >= 16, and
  the test windows must fit around their seeds."""
  window = source_len + target_len
  if data.train:
    key, seq = min(data.train.items(), key=lambda kv: len(kv[1]))
    if len(seq) <= data_utils.MIN_START + window:
      raise UsageError(
          "--seq_length_in {} + --seq_length_out {} = {} frames do not fit the shortest "
          "training sequence (S{} {}_{}: {} frames at 25 fps, need more than {} + 16)".format(
              source_len, target_len, window, key[0], key[1], key[2], len(seq), window))
  if source_len > data_utils.MIN_START + data_utils.SRNN_PREFIX:
    raise UsageError("--seq_length_in {} is longer than the SRNN test windows allow (at most "
                     "{})".format(source_len, data_utils.MIN_START + data_utils.SRNN_PREFIX))
  if protocol == "all" and source_len > data_utils.SRNN_PREFIX:
    raise UsageError("--seq_length_in {}: the 'all' windows observe {} frames (at most {})".format(
        source_len, data_utils.SRNN_PREFIX, data_utils.SRNN_PREFIX))
  if target_len > data_utils.SRNN_SUFFIX:
    raise UsageError("--seq_length_out {} is longer than the SRNN test windows allow (at most "
                     "{})".format(target_len, data_utils.SRNN_SUFFIX))


def read_data(flags, normalisation=None, test_subject=data_utils.TEST_SUBJECT):
  """Training and `test_subject`'s sequences normalised with the training
  frames' statistics; with a run's stored `normalisation`, the test subject
  alone."""
  if normalisation is None:
    data = data_utils.read_all_data(flags.actions, flags.data_dir,
                                    SELECT_ON[flags.select_on][0], test_subject)
  else:
    test, _ = data_utils.load_data(flags.data_dir, [test_subject], flags.actions)
    stats = [normalisation[k] for k in ("mean", "std", "dim_to_use")]
    data = data_utils.Dataset({}, data_utils.normalize(test, *stats), *stats)
  kind = "test" if test_subject == data_utils.TEST_SUBJECT else "validation"
  print("Read {} training and {} {} sequences (subject {}) from {}".format(
      len(data.train), len(data.test), kind, test_subject, flags.data_dir))
  return data


# ----------------------------------------------------------------------------
# Training, --sample and the baseline


def evaluated_subject(flags):
  """The subject of the evaluation while training (and of the baseline)."""
  return SELECT_ON[flags.select_on][1]


def warn_of_identical_files(flags):
  """One line naming the training files identical to held-out ones (test or
  validation): the run trains on those sequences, as the original would."""
  train = SELECT_ON[flags.select_on][0]
  held_out = sorted(set(data_utils.TRAIN_SUBJECTS + (data_utils.TEST_SUBJECT,)) - set(train))
  pairs = data_utils.identical_files(flags.data_dir, train, held_out, flags.actions)
  if pairs:
    print("warning: training files byte-identical to held-out ones, so those sequences are "
          "trained on (kept, as in the original; data/README.md): {}".format(
              ", ".join("{} = {}".format(*pair) for pair in pairs)))


def training_task(flags):
  warn_of_identical_files(flags)
  subject = evaluated_subject(flags)
  data = read_data(flags, test_subject=subject)
  check_lengths(data, flags.seq_length_in, flags.seq_length_out, flags.eval_protocol)
  test = srnn.SrnnTest(data, flags.actions, flags.seq_length_in, flags.seq_length_out,
                       flags.eval_protocol, subject)
  window = flags.seq_length_in + flags.seq_length_out

  def next_batch(rng, batch_size, sequences=data.train):
    windows = data_utils.random_windows(sequences, rng, batch_size, window)
    return data_utils.split_windows(windows, flags.seq_length_in)

  def validation_batch(rng):
    return next_batch(rng, flags.batch_size, data.test)

  evaluate = expmap.training_evaluation(test, validation_batch, flags.eval_protocol)
  # the model sees the dimensions the normalisation keeps (54 on H3.6M)
  return TrainingTask(len(data.dim_to_use), expmap.stats_of(data), next_batch, evaluate)


def sampling_task(flags, normalisation):
  """Every action on the SRNN windows with the original --sample dimension
  rule; writes the samples file."""
  data = read_data(flags, normalisation)
  check_lengths(data, SAMPLE_SOURCE_LEN, flags.seq_length_out)
  test = srnn.SrnnTest(data, flags.actions, SAMPLE_SOURCE_LEN, flags.seq_length_out,
                       flags.eval_protocol)

  def evaluate(predict):
    mean_errors, predictions, _ = test.evaluate(predict, mask_from="pred")
    srnn.print_table(mean_errors, flags.seq_length_out,
                     title=test.title(expmap.EULER, base.model_name(flags)))
    srnn.print_sample_results(mean_errors, flags.seq_length_out)
    report_samples(flags, test, mean_errors, predictions)

  return SamplingTask(len(data.dim_to_use), SAMPLE_SOURCE_LEN, evaluate)


def zero_velocity(flags):
  """The baseline, scored with the ground-truth dimension rule: on subject 5
  with --sample, else on the subject training evaluates (--select_on)."""
  subject = data_utils.TEST_SUBJECT if flags.sample else evaluated_subject(flags)
  data = read_data(flags, test_subject=subject)
  source_len = SAMPLE_SOURCE_LEN if flags.sample else flags.seq_length_in
  check_lengths(data, source_len, flags.seq_length_out, flags.eval_protocol)
  test = srnn.SrnnTest(data, flags.actions, source_len, flags.seq_length_out,
                       flags.eval_protocol, subject)
  mean_errors, predictions, _ = test.evaluate(zero_velocity_predict, mask_from="gt")
  srnn.print_table(mean_errors, flags.seq_length_out,
                   title=test.title(expmap.EULER, base.model_name(flags)))
  if flags.sample:
    report_samples(flags, test, mean_errors, predictions)


# The millimetre tables of --sample: (samples key, title, errors [..., T, 99] x 2 -> [..., T]).
POSITION_TABLES = (
    ("position_error", "Mean per-joint position error (mm, {} joints, root-relative)".format(
        len(h36m_skeleton.MOVING_JOINTS)), h36m_skeleton.position_errors),
    ("mpjpe", "MPJPE (mm, all 32 joints, root-relative, at each horizon)", h36m_skeleton.mpjpe),
    ("mpjpe22", "MPJPE (mm, the 22 predicted joints)",
     lambda pred, gt: h36m_skeleton.mpjpe(pred, gt, h36m_skeleton.PREDICTED_JOINTS)))


def report_samples(flags, test, mean_errors, predictions):
  """--sample's millimetre tables and samples file (docs/PROTOCOL.md §7-8)."""
  expmap.report_samples(flags.samples_file, POSITION_TABLES, test, mean_errors, predictions,
                        base.samples_attributes(flags, test.source))


# ----------------------------------------------------------------------------
# Export and forecast: raw exp-map frames in and out


def normalisation_of_run(flags, stored):
  """The run's stored statistics, else those of its training data, recomputed."""
  if stored is not None:
    return stored
  return expmap.stats_of(read_data(flags))


def inference_shape(flags, normalisation):
  """(input size P, source length) of the exported model."""
  return len(normalisation["dim_to_use"]), SAMPLE_SOURCE_LEN


def inference_graph(flags, run_model, normalisation, batch):
  """observed [N, 50, 99] exp-map frames -> forecast [N, out, 99], the
  normalisation inside. Returns ({name: placeholder}, forecast)."""
  return expmap.inference_graph(run_model, normalisation, batch, SAMPLE_SOURCE_LEN,
                                flags.seq_length_out, data_utils.POSE_DIM)


def add_forecast_args(parser):
  """H3.6M needs none beyond forecast.py's own."""


def forecast_frames(poses):
  """[T, 99] exp-map frames of a [T, 99] input, else None."""
  return expmap.forecast_frames(poses, data_utils.POSE_DIM)


FORECAST_INPUT = "99 exponential-map numbers a line, or a [T, 99] .npy"


def forecast_feeds(observed, args):
  return expmap.forecast_feeds(observed)


def forecast_rows(forecast):
  """[out, 99] -> text rows."""
  return forecast
