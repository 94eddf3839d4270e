"""Train or evaluate a TP-RNN on H3.6M exponential-map poses (docs/PROTOCOL.md §1-3).

  python tprnn_train_human.py                               # train, model card flags
  python tprnn_train_human.py --sample --load N             # evaluate, write samples.h5
  python tprnn_train_human.py --model zero_velocity         # baseline table
"""

from tprnn.util import quiet_tensorflow  # noqa: F401  (first: TensorFlow loads without its banner)

import h5py
import numpy as np

from tprnn.util import atomic_file
import data_utils
from tprnn.util.errors import run_main
from tprnn.training import experiment
from tprnn.datasets import h36m_skeleton
from tprnn.parallel import launch

SAMPLE_SOURCE_LEN = 50  # --sample always conditions on 50 frames, as the original


def parse_flags(argv):
  parser = experiment.flag_parser(__file__, __doc__.splitlines()[0], "human",
                                  "./data/h3.6m/dataset", seq_length_in=50, seq_length_out=10)
  parser.add_argument("--action", default="all",
                      help="An H3.6M action, 'all' (15) or 'all_srnn' (first four).")
  flags = experiment.parse(parser, argv)
  if flags.seq_length_out < 2:
    raise experiment.UsageError("--seq_length_out must be at least 2: the error table starts at "
                                "80 ms, the second predicted frame")
  experiment.check_common_flags(flags, "human")
  flags.actions = data_utils.define_actions(flags.action)
  return flags


def check_lengths(data, source_len, target_len):
  """Every training sequence must hold a window starting at frame >= 16, and
  the SRNN windows must fit around their seeds."""
  window = source_len + target_len
  key, seq = min(data.train.items(), key=lambda kv: len(kv[1]))
  if len(seq) <= data_utils.MIN_START + window:
    raise experiment.UsageError(
        "--seq_length_in {} + --seq_length_out {} = {} frames do not fit the shortest "
        "training sequence (S{} {}_{}: {} frames at 25 fps, need more than {} + 16)".format(
            source_len, target_len, window, key[0], key[1], key[2], len(seq), window))
  if source_len > data_utils.MIN_START + data_utils.SRNN_PREFIX:
    raise experiment.UsageError("--seq_length_in {} is longer than the SRNN test windows "
                                "allow (at most {})".format(
                                    source_len, data_utils.MIN_START + data_utils.SRNN_PREFIX))
  if target_len > data_utils.SRNN_SUFFIX:
    raise experiment.UsageError("--seq_length_out {} is longer than the SRNN test windows "
                                "allow (at most {})".format(target_len, data_utils.SRNN_SUFFIX))


def horizons(target_len):
  """(column ms, frame index) of the table that a target_len horizon reaches."""
  return [(ms, f) for ms, f in zip(data_utils.HORIZON_MS, data_utils.HORIZON_FRAMES)
          if f < target_len]


# ----------------------------------------------------------------------------
# Evaluation on the SRNN seeds


class SrnnTest(object):
  """The SRNN test windows of each action, and their de-normalised ground
  truth in exp-map [8, out, 99] and Euler angles."""

  def __init__(self, data, actions, source_len, target_len):
    self.data, self.actions, self.target_len = data, actions, target_len
    self.feeds, self.gt_expmap, self.gt_euler = {}, {}, {}
    for action in actions:
      windows = data_utils.srnn_windows(data.test, action, source_len, target_len)
      self.feeds[action] = data_utils.split_windows(windows, source_len)
      self.gt_expmap[action] = self.denormalize(self.feeds[action][2])
      self.gt_euler[action] = data_utils.expmap_to_euler(self.gt_expmap[action])

  def denormalize(self, poses):
    return data_utils.unnormalize(poses, self.data.mean, self.data.std, self.data.dim_to_use)

  def observed(self, action):
    """The de-normalised frames the model observes [8, in, 99]: the encoder's
    and the first decoder input."""
    enc, dec_in, _ = self.feeds[action]
    return self.denormalize(np.concatenate([enc, dec_in[:, :1]], axis=1))

  def position_errors(self, predictions):
    """{action: mean per-joint position error in mm [out]} of de-normalised
    predictions {action: [8, out, 99]} (docs/PROTOCOL.md §7)."""
    return {action: h36m_skeleton.position_errors(predictions[action],
                                               self.gt_expmap[action]).mean(axis=0)
            for action in self.actions}

  def evaluate(self, predict, mask_from):
    """predict(enc, dec_in, dec_out) -> (normalised predictions [8, out, P], loss).
    Returns ({action: mean error [out]}, {action: de-normalised predictions
    [8, out, 99]}, the mean of the SRNN losses)."""
    mean_errors, predictions, losses = {}, {}, []
    for action in self.actions:
      preds, loss = predict(*self.feeds[action])
      predictions[action] = self.denormalize(preds)
      errors = data_utils.euler_errors(data_utils.expmap_to_euler(predictions[action]),
                                       self.gt_euler[action], mask_from)
      mean_errors[action] = errors.mean(axis=0)
      losses.append(loss)
    return mean_errors, predictions, float(np.mean(losses))


def with_average(mean_errors):
  """[(action, errors)...] followed by ("average", their mean)."""
  return list(mean_errors.items()) + [("average", np.mean(list(mean_errors.values()), axis=0))]


def print_table(mean_errors, target_len, cell=" {0:.3f} |", title=None):
  """The original's table: one row per action, then the average row."""
  print()
  if title:
    print(title)
  print("{0: <16} |".format("milliseconds") + "".join(
      " {0:5d} |".format(ms) for ms in data_utils.HORIZON_MS))
  for name, errors in with_average(mean_errors):
    print("{0: <16} |".format(name) + "".join(
        cell.format(errors[f]) if f < target_len else "   n/a |"
        for f in data_utils.HORIZON_FRAMES))


def print_position_table(position_errors, target_len):
  print_table(position_errors, target_len, cell=" {0:5.1f} |",
              title="Mean per-joint position error (mm, {} joints, root-relative)".format(
                  len(h36m_skeleton.MOVING_JOINTS)))


def error_summaries(mean_errors, target_len):
  """TensorBoard values: each action's and the average's horizons, and the
  average error summed over the whole horizon."""
  rows = with_average(mean_errors)
  values = {"euler_error_{}/srnn_seeds_{:04d}".format(name, ms): errors[frame]
            for name, errors in rows for ms, frame in horizons(target_len)}
  values["euler_error_average/srnn_seeds_sum"] = np.sum(rows[-1][1])
  return values


# ----------------------------------------------------------------------------
# Modes


def report_samples(path, srnn, mean_errors, predictions):
  """--sample's position-error table and samples file."""
  position_errors = srnn.position_errors(predictions)
  print_position_table(position_errors, srnn.target_len)
  write_samples(path, srnn, mean_errors, position_errors, predictions)


def write_samples(path, srnn, mean_errors, position_errors, predictions):
  """samples.h5: expmap/gt/{action}_{i}, expmap/preds/{action}_{i} (i = 0..7,
  de-normalised [out, 99]) and mean_{action}_error [out], as the original;
  besides, expmap/observed/{action}_{i} [in, 99] (the frames the model saw)
  and mean_{action}_position_error [out] (mm)."""
  with atomic_file.atomic_output(path) as tmp:
    with h5py.File(tmp, "w") as f:
      for action, errors in mean_errors.items():
        observed = srnn.observed(action)
        for i in range(data_utils.SRNN_NUM_SEEDS):
          f.create_dataset("expmap/gt/{}_{}".format(action, i), data=srnn.gt_expmap[action][i])
          f.create_dataset("expmap/preds/{}_{}".format(action, i), data=predictions[action][i])
          f.create_dataset("expmap/observed/{}_{}".format(action, i), data=observed[i])
        f.create_dataset("mean_{}_error".format(action), data=errors)
        f.create_dataset("mean_{}_position_error".format(action), data=position_errors[action])
  print("Wrote {}".format(path))


def print_sample_results(mean_errors, target_len):
  """The original --sample lines: full-horizon errors per action and averaged,
  then the 80/160/320/400 ms subset (and the six columns when they exist)."""
  def print_subsets(errors):
    print("Subset results for 80ms, 160ms, 320ms, 400ms")
    print(",".join(str(errors[f]) for f in data_utils.HORIZON_FRAMES[:4] if f < target_len))
    if target_len > data_utils.HORIZON_FRAMES[-1]:
      print("Subset results for 80ms, 160ms, 320ms, 400ms, 560ms, 1000ms")
      print(",".join(str(errors[f]) for f in data_utils.HORIZON_FRAMES))

  for name, errors in with_average(mean_errors):
    print(name if name != "average" else "Avg mean errors across all actions:")
    print(",".join(map(str, errors.tolist())))
    print_subsets(errors)


def evaluate_zero_velocity(flags, data):
  """The baseline, scored with the ground-truth dimension rule."""
  srnn = SrnnTest(data, flags.actions, SAMPLE_SOURCE_LEN if flags.sample else flags.seq_length_in,
                  flags.seq_length_out)
  mean_errors, predictions, _ = srnn.evaluate(experiment.zero_velocity_predict, mask_from="gt")
  print_table(mean_errors, flags.seq_length_out)
  if flags.sample:
    report_samples(flags.samples_file, srnn, mean_errors, predictions)


def sample(flags, data, directory):
  """Restores checkpoint --load, evaluates every action on the SRNN seeds with
  the original --sample dimension rule, writes the samples file."""
  srnn = SrnnTest(data, flags.actions, SAMPLE_SOURCE_LEN, flags.seq_length_out)

  def evaluate(predict):
    mean_errors, predictions, _ = srnn.evaluate(predict, mask_from="pred")
    print_table(mean_errors, flags.seq_length_out)
    print_sample_results(mean_errors, flags.seq_length_out)
    report_samples(flags.samples_file, srnn, mean_errors, predictions)

  experiment.sample(flags, len(data.dim_to_use), SAMPLE_SOURCE_LEN, directory, evaluate)


def train(flags, data, directory):
  srnn = SrnnTest(data, flags.actions, flags.seq_length_in, flags.seq_length_out)
  window = flags.seq_length_in + flags.seq_length_out
  last_horizon = horizons(flags.seq_length_out)[-1][1]

  def next_batch(rng, batch_size, sequences=data.train):
    windows = data_utils.random_windows(sequences, rng, batch_size, window)
    return data_utils.split_windows(windows, flags.seq_length_in)

  def evaluate(predict, status, summarize):
    _, val_loss = predict(*next_batch(status.rng, flags.batch_size, data.test))
    mean_errors, _, srnn_loss = srnn.evaluate(predict, mask_from="gt")
    print_table(mean_errors, flags.seq_length_out)
    values = error_summaries(mean_errors, flags.seq_length_out)
    values["loss/loss"] = val_loss
    summarize(values)
    print()
    print("============================\n"
          "Global step:         {}\n"
          "Learning rate:       {:.4f}\n"
          "Step-time (ms):     {:.4f}\n"
          "Train loss avg:      {:.4f}\n"
          "--------------------------\n"
          "Val loss:            {:.4f}\n"
          "srnn loss:           {:.4f}\n"
          "============================".format(
              status.global_step, status.learning_rate, status.step_time_ms,
              status.train_loss, val_loss, srnn_loss))
    average = with_average(mean_errors)[-1][1]
    return average[last_horizon], np.sum(average)

  # the model sees the dimensions the normalisation keeps (54 on H3.6M)
  return experiment.train(flags, len(data.dim_to_use), directory, next_batch, evaluate)


def main(argv):
  flags = parse_flags(argv)
  directory = experiment.experiment_dir(flags, [flags.dataset, flags.action])
  if flags.workers > 1:
    return launch.launch(__file__, argv, flags.workers)
  data = data_utils.read_all_data(flags.actions, flags.data_dir)
  print("Read {} training and {} test sequences from {}".format(
      len(data.train), len(data.test), flags.data_dir))
  if flags.model == experiment.ZERO_VELOCITY:
    check_lengths(data, flags.seq_length_in, flags.seq_length_out)
    return evaluate_zero_velocity(flags, data)
  print("Experiment directory: {}".format(directory))
  if flags.sample:
    check_lengths(data, SAMPLE_SOURCE_LEN, flags.seq_length_out)
    return sample(flags, data, directory)
  check_lengths(data, flags.seq_length_in, flags.seq_length_out)
  return train(flags, data, directory)


if __name__ == "__main__":
  raise SystemExit(run_main(main))
