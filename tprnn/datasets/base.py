"""What a dataset module gives the training code (tprnn.training.run)."""

import collections

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
