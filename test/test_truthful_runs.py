"""Runs that tell the truth: checkpoint messages name checkpoints that exist, a run that will not
evaluate says so, another dataset's directory is one line naming both datasets, tables and
samples.h5 say what they score, metrics.csv holds the TensorBoard scalars, damaged run files are
one line, a killed save's temporary files go at the next start, and data paths say what they
are relative to."""

import csv
import glob
import json
import os
import re
import shutil
import subprocess

import h5py
import pytest
import tensorflow.compat.v1 as tf

import tprnn_train_cmu
import tprnn_train_human
import tprnn_train_penn
from tprnn.training import checkpoints, rundir
from conftest import ROOT, TINY, error_lines, experiment_dir, human, run_script, tiny

SCRIPTS = {"human": tprnn_train_human, "penn": tprnn_train_penn, "cmu": tprnn_train_cmu}


@pytest.fixture(scope="module")
def run20(h36m, tmp_path_factory):
  """(train_dir, directory, stdout) of a tiny 20-step run evaluated and saved every 10 steps."""
  train_dir = tmp_path_factory.mktemp("run20")
  code, out, err = human(h36m, tiny(iterations=20, test_every=10, save_every=10,
                                    train_dir=train_dir))
  assert code == 0, err
  return str(train_dir), experiment_dir(train_dir), out


def copied_run(run20, tmp_path):
  """A copy of run20's directory, to damage; its flags point at it."""
  directory = str(tmp_path / "run")
  shutil.copytree(run20[1], directory)
  return directory


def test_a_best_model_not_saved_is_said_and_the_closing_line_names_a_saved_one(h36m, tmp_path):
  code, out, err = human(h36m, tiny(iterations=30, test_every=10, save_every=20,
                                    learning_rate="0.05", train_dir=tmp_path))
  assert code == 0, err
  directory = experiment_dir(tmp_path)
  saved = checkpoints.steps(directory)
  for step in re.findall(r"Found a better model; checkpoint id (\d+) \((?:the last step, )?saved "
                         r"as checkpoint-\1", out):
    assert int(step) in saved
  unsaved = re.findall(r"Found a better model at step (\d+) \(not saved: not a multiple of "
                       r"--save_every 20\)", out)
  assert unsaved and all(int(s) % 20 and int(s) not in saved for s in unsaved)
  (closing,) = re.findall(r"^Best model's checkpoint id: .*$", out, re.M)
  named = re.match(r"Best model's checkpoint id: (\d+)", closing)
  assert named is None or int(named.group(1)) in saved, closing


def test_a_run_that_will_not_evaluate_says_so_at_the_start(h36m, tmp_path):
  code, out, err = human(h36m, tiny(iterations=5, test_every=10, train_dir=tmp_path))
  assert code == 0, err
  note = ("note: no evaluation in this run (no multiple of --test_every 10 in steps 1 to 5): no "
          "table, no best model; the last step is saved")
  assert note in out and out.index(note) < out.index("step_loss")
  assert out.rstrip().endswith("Best model's checkpoint id: none (no evaluation ran; the last "
                               "checkpoint is {})".format(
                                   checkpoints.path(experiment_dir(tmp_path), 5)))


@pytest.mark.parametrize("script,held", [(s, h) for s in SCRIPTS for h in SCRIPTS if s != h])
def test_another_datasets_directory_is_one_line_naming_both(script, held, tmp_path):
  directory = str(tmp_path / "run")
  os.makedirs(directory)
  rundir.write_flags(directory, {"dataset": held, "rnn_size": 8, "seq_length_in": 50})
  code, out, err = run_script(SCRIPTS[script], ["--experiment_dir", directory, "--load", "10",
                                                "--sample"])
  assert code == 1 and out == ""
  assert err == "error: --experiment_dir {} holds a '{}' run, not a '{}' one: use " \
                "tprnn_train_{}.py for it\n".format(directory, held, script, held)


def test_the_checkpoint_found_elsewhere_hint_stays_within_the_dataset(run20, h36m, tmp_path):
  train_dir = str(tmp_path / "experiments")
  cmu_run = os.path.join(train_dir, "cmu", "walking", "run")
  shutil.copytree(run20[1], cmu_run)
  rundir.write_flags(cmu_run, dict(rundir.read_flags(cmu_run), dataset="cmu"))
  code, _, err = human(h36m, tiny(sample=None, load=20, train_dir=train_dir))
  assert code == 1
  (line,) = error_lines(err)
  assert "no checkpoint-20" in line and cmu_run not in line


def test_tables_and_the_samples_file_say_what_they_score(run20, h36m, tmp_path):
  _, directory, out = run20
  assert ("Euler angle error (rad) of the model at step 10; protocol srnn8, 8 windows per action "
          "of subject 5") in out
  assert "Val loss:            " in out and "(one random batch of the test sequences)" in out
  assert re.search(r"^Read \d+ training and 2 test sequences \(subject 5\) from ", out, re.M)
  samples = str(tmp_path / "s.h5")
  code, out, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "20",
                                                  "--sample", "--samples_file", samples])
  assert code == 0, err
  assert ("Euler angle error (rad) of checkpoint-20; protocol srnn8, 8 windows per action of "
          "subject 5") in out
  assert "MPJPE (mm, all 32 joints, root-relative, at each horizon) of checkpoint-20; " in out
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, universal_newlines=True,
                          stdout=subprocess.PIPE).stdout.strip()
  with h5py.File(samples, "r") as f:
    attributes = dict(f.attrs)
  assert attributes["model"] == "checkpoint-20" and attributes["checkpoint_step"] == 20
  assert attributes["protocol"] == "srnn8" and attributes["scored"] == "subject 5"
  assert attributes["windows"] == "protocol srnn8, 8 windows per action of subject 5"
  assert attributes["code_version"].rstrip("+") == commit
  recorded = json.loads(attributes["flags"])
  assert recorded["rnn_size"] == int(TINY["--rnn_size"]) and recorded["load"] == 20


def test_validation_sequences_are_called_that(h36m, tmp_path):
  code, out, err = human(h36m, tiny(iterations=1, select_on="validation", train_dir=tmp_path))
  assert code == 0, err
  assert re.search(r"^Read \d+ training and 2 validation sequences \(subject 11\) from ", out, re.M)


def tensorboard_scalars(directory):
  """{step: {'<run>/<tag>': value}} of a run's event files."""
  scalars = {}
  for run in ("train", "test"):
    for path in glob.glob(os.path.join(directory, "log", run, "events.out.tfevents.*")):
      for event in tf.train.summary_iterator(path):
        for value in event.summary.value:
          scalars.setdefault(event.step, {})["{}/{}".format(run, value.tag)] = value.simple_value
  return scalars


def test_metrics_csv_holds_the_tensorboard_scalars(run20):
  directory = run20[1]
  with open(os.path.join(directory, "metrics.csv"), newline="") as f:
    rows = {int(r.pop("step")): {k: float(v) for k, v in r.items() if v} for r in csv.DictReader(f)}
  scalars = tensorboard_scalars(directory)
  assert sorted(rows) == sorted(scalars) == list(range(21))
  for step, values in scalars.items():
    assert sorted(rows[step]) == sorted(values), step
    for column, value in values.items():
      assert rows[step][column] == pytest.approx(value, rel=1e-6), (step, column)
  assert "test/euler_error_walking/srnn_seeds_0080" in rows[10] and "train/loss/loss" in rows[0]


def test_a_resumed_run_keeps_the_rows_up_to_its_checkpoint(run20, h36m, tmp_path):
  directory = copied_run(run20, tmp_path)
  code, out, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "10",
                                                  "--more", "5", "--test_every", "100"])
  assert code == 0, err
  with open(os.path.join(directory, "metrics.csv"), newline="") as f:
    steps = [int(r["step"]) for r in csv.DictReader(f)]
  assert steps == list(range(15))


def test_a_cut_normalisation_file_is_one_line(run20, tmp_path):
  directory = copied_run(run20, tmp_path)
  path = os.path.join(directory, "normalisation.npz")
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])
  code, out, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "20",
                                                  "--sample", "--samples_file",
                                                  str(tmp_path / "s.h5")])
  assert code == 1
  (line,) = err.splitlines()
  assert line.startswith("error: {} is damaged (".format(path))
  assert line.endswith("delete it, and the statistics are recomputed from --data_dir")
  os.remove(path)
  code, _, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "20",
                                                "--sample", "--samples_file", str(tmp_path / "s.h5")])
  assert code == 0, err


def test_a_damaged_flags_file_is_one_line(run20, tmp_path):
  directory = copied_run(run20, tmp_path)
  path = os.path.join(directory, "flags.json")
  with open(path, "w") as f:
    f.write('{"rnn_size": 8, "act')
  code, _, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "20",
                                                "--sample"])
  assert code == 1
  (line,) = err.splitlines()
  assert line.startswith("error: {} is damaged: not JSON (".format(path))


def test_a_killed_saves_temporary_files_go_at_the_next_start(run20, tmp_path):
  directory = copied_run(run20, tmp_path)
  left = ["checkpoint-30.data-00000-of-00001.tempstate8316415170624447466",  # TensorFlow's names
          "checkpoint-30.index.tempstate8316415170624447466", "flags.tmp4242.json"]
  for name in left:
    open(os.path.join(directory, name), "w").close()
  code, out, err = run_script(tprnn_train_human, ["--experiment_dir", directory, "--load", "20",
                                                  "--more", "1", "--test_every", "100"])
  assert code == 0, err
  assert "Removed the temporary files of an interrupted save: {}".format(", ".join(
      sorted(left[:2]) + left[2:])) in out
  assert not set(left) & set(os.listdir(directory))


def test_relative_data_paths_are_said_to_be_and_a_parent_folder_is_pointed_in(h36m, tmp_path,
                                                                               monkeypatch):
  monkeypatch.chdir(str(tmp_path))
  code, _, err = human("nowhere", tiny(train_dir=tmp_path))
  assert err == "error: data directory nowhere not found (relative to the current directory, " \
                "{}) (see data/README.md)\n".format(tmp_path)
  shutil.copytree(h36m, str(tmp_path / "h3.6m" / "dataset"))
  code, _, err = human("h3.6m", tiny(train_dir=tmp_path))
  assert code == 1 and err == "error: data directory h3.6m holds no S1 but {0} does: pass " \
                              "{0}\n".format(os.path.join("h3.6m", "dataset"))
