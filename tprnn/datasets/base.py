"""What a dataset module gives the training code (tprnn.training.run)."""

import collections
import json

from tprnn import config
from tprnn.util import version

TrainingTask = collections.namedtuple("TrainingTask", [
    "input_size",     # P, the pose size the model sees
    "normalisation",  # {name: array} stored with the run (normalisation.npz), or None
    "next_batch",     # next_batch(rng, n) -> (encoder input, decoder input, target) [n, ...]
    "evaluate",       # evaluate(predict, status) -> evaluation.report.Report; prints it
])

SamplingTask = collections.namedtuple("SamplingTask", [
    "input_size",
    "source_len",  # the seq_length_in of the model --sample builds
    "evaluate",    # evaluate(predict): prints the tables, writes --samples_file
])


def model_name(flags):
  """What --sample or the baseline scores: 'checkpoint-N' or 'zero velocity'."""
  return "zero velocity" if flags.model == config.ZERO_VELOCITY else "checkpoint-{}".format(
      flags.load)


def samples_attributes(flags, scored):
  """samples.h5's root attributes: the model, what it was scored on (`scored`),
  the protocol, every flag (JSON) and the code's version."""
  attributes = {"model": model_name(flags), "scored": scored,
                "flags": json.dumps(config.plain_values(flags), sort_keys=True),
                "code_version": version.code_version()}
  if flags.model != config.ZERO_VELOCITY:
    attributes["checkpoint_step"] = flags.load
  return attributes
