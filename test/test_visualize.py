"""Forward kinematics against an independent rotation chain, bone lengths on
real frames, the position error of --sample, the new samples keys, and
visualize.py's pictures and errors."""

import os
import subprocess
import sys

import h5py
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image
from scipy.spatial.transform import Rotation

import data_utils
from tprnn.datasets import h36m, h36m_figures, h36m_skeleton, penn_figures
import load
import visualize
from conftest import (H36M_DIR, PENN_DIR, ROOT, human, need, penn, penn_labels,
                      penn_validation_videos)

matplotlib.use("Agg")


def chained_positions(frames):
  """Joint positions [..., 32, 3] of 99-d frames [..., 99] with scipy Rotation objects, the
  global translation and rotation (entries 0..5) left out: global orientation = local *
  parent's, offset carried by the parent's orientation (the row-vector v @ M is M's inverse
  applied to v)."""
  flat = np.asarray(frames, dtype=np.float64).reshape(-1, 99)
  orientation, xyz = [], np.zeros((len(flat), 32, 3))
  for j in range(32):
    local = Rotation.from_rotvec(flat[:, 3 + 3 * j:6 + 3 * j] if j else np.zeros((len(flat), 3)))
    parent = h36m_skeleton.PARENTS[j]
    if parent < 0:
      orientation.append(local)
      continue
    xyz[:, j] = orientation[parent].inv().apply(h36m_skeleton.OFFSETS[j]) + xyz[:, parent]
    orientation.append(local * orientation[parent])
  return xyz.reshape(np.shape(frames)[:-1] + (32, 3))


def test_forward_kinematics_equals_an_independent_rotation_chain():
  rng = np.random.RandomState(0)
  frames = rng.uniform(-1.5, 1.5, (6, 99))
  expected = np.stack([chained_positions(f) for f in frames])
  np.testing.assert_allclose(h36m_skeleton.positions(frames), expected, atol=1e-9)
  np.testing.assert_allclose(h36m_skeleton.positions(frames.reshape(2, 3, 99)),
                             expected.reshape(2, 3, 32, 3), atol=1e-9)


def test_every_bone_keeps_its_length_on_real_frames():
  need(H36M_DIR)
  frames = data_utils.read_sequence(os.path.join(H36M_DIR, "S1", "walking_1.txt"))[::10]
  xyz = h36m_skeleton.positions(frames)  # [T, 32, 3]
  np.testing.assert_allclose(xyz[:, 0], 0.0)  # the root stays at the origin
  lengths = np.linalg.norm(h36m_skeleton.OFFSETS, axis=1)
  for j in range(1, 32):
    bone = np.linalg.norm(xyz[:, j] - xyz[:, h36m_skeleton.PARENTS[j]], axis=-1)
    np.testing.assert_allclose(bone, lengths[j], atol=1e-6 * max(lengths[j], 1.0), err_msg=str(j))
  assert np.ptp(xyz[:, h36m_skeleton.MOVING_JOINTS], axis=0).max() > 100  # the body does move


def test_position_error_of_a_perfect_prediction_is_zero():
  rng = np.random.RandomState(1)
  frames = rng.uniform(-1, 1, (3, 10, 99))
  np.testing.assert_array_equal(h36m_skeleton.position_errors(frames, frames), 0.0)
  moved = frames.copy()
  moved[..., 3 + 3 * 2] += 0.5  # one knee rotates
  assert h36m_skeleton.position_errors(moved, frames).min() > 0


@pytest.fixture(scope="module")
def zero_velocity_walking(tmp_path_factory):
  need(H36M_DIR)
  path = str(tmp_path_factory.mktemp("zv") / "walking.h5")
  code, out, err = human(H36M_DIR, action="walking", model="zero_velocity", sample=None,
                         seq_length_out="25", samples_file=path)
  assert code == 0, err
  return path, out


PREDICTED_22 = [2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 21, 22, 25, 26, 27, 29, 30]


def test_sample_adds_position_errors_and_keeps_every_original_key(zero_velocity_walking):
  path, out = zero_velocity_walking
  with h5py.File(path, "r") as f:
    keys = set()
    f.visit(keys.add)
    original = {"expmap/gt/walking_{}".format(i) for i in range(8)} | {
        "expmap/preds/walking_{}".format(i) for i in range(8)} | {"mean_walking_error"}
    assert original <= keys
    assert {"expmap/observed/walking_{}".format(i) for i in range(8)} <= keys
    assert f["expmap/observed/walking_0"].shape == (50, 99)
    position = f["mean_walking_position_error"][()]
    gt = np.stack([f["expmap/gt/walking_{}".format(i)][()] for i in range(8)])
    preds = np.stack([f["expmap/preds/walking_{}".format(i)][()] for i in range(8)])
  # the error recomputed with the rotation chain: the distance of each joint with a bone (26: not
  # the root, nor the four of length 0, nor joint 11's 0.1 mm), over joints then windows
  bones = np.linalg.norm(h36m_skeleton.OFFSETS, axis=1) > 1.0
  assert bones.sum() == 26
  distance = np.linalg.norm(chained_positions(preds) - chained_positions(gt), axis=-1)  # [8, 25, 32]
  np.testing.assert_allclose(position, distance[..., bones].mean(axis=-1).mean(axis=0), rtol=1e-5)
  columns = position[list(data_utils.HORIZON_FRAMES)]
  assert np.all(np.diff(columns) > 0) and columns[0] > 10  # zero-velocity drifts away
  table = out[out.index("Mean per-joint position error (mm, 26 joints"):]
  row = [line for line in table.splitlines() if line.startswith("walking ")][0]
  assert [float(c) for c in row.split("|")[1:-1]] == [round(c, 1) for c in columns]
  # the field's MPJPE: every one of the 32 joints, and the 22 it predicts
  with h5py.File(path, "r") as f:
    np.testing.assert_allclose(f["mean_walking_mpjpe"][()], distance.mean(axis=-1).mean(axis=0),
                               rtol=1e-5)
    np.testing.assert_allclose(f["mean_walking_mpjpe22"][()], distance[..., PREDICTED_22].mean(
        axis=-1).mean(axis=0), rtol=1e-5)
  assert "Mean per-joint position error (mm, 26 joints, root-relative)" in out


@pytest.mark.slow
def test_h36m_gif_and_strip(zero_velocity_walking, tmp_path):
  path, _ = zero_velocity_walking
  assert visualize.main(["h36m", path, "--action", "walking", "--seed", "3", "--out",
                         str(tmp_path)]) == 0
  gif = Image.open(str(tmp_path / "h36m_walking_3.gif"))
  assert gif.n_frames == 10 + 25  # the last 10 observed frames, then the 25 forecast
  gif.seek(20)
  frame = np.asarray(gif.convert("L"), dtype=float)
  strip = np.asarray(Image.open(str(tmp_path / "h36m_walking_3_strip.png")).convert("L"), float)
  for image in (frame, strip):
    assert image.std() > 10 and 0.005 < (image < 200).mean() < 0.5  # drawn, not blank
  assert sorted(os.listdir(str(tmp_path))) == ["h36m_walking_3.gif", "h36m_walking_3_strip.png"]
  visualize.main(["h36m", path, "--seed", "3", "--observed", "50", "--out", str(tmp_path)])
  assert Image.open(str(tmp_path / "h36m_walking_3.gif")).n_frames == 50 + 25


def test_comparison_plot_has_one_line_per_file(zero_velocity_walking, tmp_path):
  path, _ = zero_velocity_walking
  other = str(tmp_path / "other.h5")
  with h5py.File(path, "r") as src, h5py.File(other, "w") as dst:
    for key in ("mean_walking_error", "mean_walking_position_error"):
      dst.create_dataset(key, data=src[key][()] * 0.5)
  found = visualize.curves([path, other, path], ["zero_velocity", "half", "again"])
  assert sorted(found) == ["euler", "mpjpe", "mpjpe22", "position"]
  assert sorted(found["mpjpe"][1]) == ["again", "zero_velocity"]  # "other" has no MPJPE
  figure = visualize.comparison_figure(found["position"][0], "position", found["position"][1],
                                       visualize.file_colours(["zero_velocity", "half", "again"]))
  (ax,) = figure.axes
  assert [line.get_label() for line in ax.get_lines()] == ["zero_velocity", "half", "again"]
  np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), 0.5 * ax.get_lines()[0].get_ydata())
  np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), 40 * np.arange(1, 26))
  assert visualize.main(["compare", path, other, "--labels", "a,b", "--out", str(tmp_path)]) == 0
  assert {"compare_euler.png", "compare_position.png"} <= set(os.listdir(str(tmp_path)))


def curves_file(path, actions, keys=("error",)):
  """An H3.6M samples file of only the mean curves `keys` of `actions`."""
  with h5py.File(path, "w") as f:
    for action in actions:
      for key in keys:
        f.create_dataset("mean_{}_{}".format(action, key), data=np.linspace(0.2, 1.0, 10))
  return path


def test_compare_gives_each_file_one_colour_in_every_panel_and_figure(tmp_path, monkeypatch):
  """The model file has walking only, zero velocity three actions and the
  position curves the model lacks: each keeps one colour throughout."""
  model = curves_file(str(tmp_path / "model.h5"), ["walking"])
  zero = curves_file(str(tmp_path / "zero.h5"), ["eating", "smoking", "walking"],
                     ("error", "position_error"))
  saved = {}
  monkeypatch.setattr(visualize, "save", lambda figure, path: saved.update(
      {os.path.basename(path): figure}))
  assert visualize.main(["compare", model, zero, "--labels", "model,zero_velocity",
                         "--out", str(tmp_path)]) == 0
  assert sorted(saved) == ["compare_euler.png", "compare_position.png"]
  colours = {}
  for figure in saved.values():
    for ax in figure.axes:
      for line in ax.get_lines():
        colours.setdefault(line.get_label(), []).append(to_hex(line.get_color()))
    plt.close(figure)
  assert {label: len(c) for label, c in colours.items()} == {"model": 1, "zero_velocity": 6}
  assert len(set(colours["zero_velocity"])) == 1, colours
  assert colours["model"][0] != colours["zero_velocity"][0]


@pytest.mark.parametrize("every", [5, 10])  # the default, and one panel of the 10 frames
def test_strip_title_fits_at_the_default_horizon(zero_velocity_walking, every):
  path, _ = zero_velocity_walking
  horizon = h36m.DEFAULTS["seq_length_out"]
  with h5py.File(path, "r") as samples:
    _, gt, pred = h36m_figures.FIGURES.sequence(samples, "walking", 0)
  figure = h36m_figures.FIGURES.strip(gt[:horizon], pred[:horizon], every)
  renderer = figure.canvas.get_renderer()
  title, frame = figure._suptitle, figure.bbox  # the Text itself: get_suptitle (3.8+) is its string
  box = title.get_window_extent(renderer)
  assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, (
      box, frame)
  assert title.get_text().split() == "ground truth (top, blue), prediction (bottom, red)".split()
  panel_titles = [ax.title for ax in figure.axes if ax.get_title()]
  assert len(panel_titles) == len(range(every - 1, horizon, every))
  for panel_title in panel_titles:
    assert not box.overlaps(panel_title.get_window_extent(renderer)), panel_title.get_text()
  plt.close(figure)


def test_penn_pixels_invert_the_loaders_normalisation():
  need(PENN_DIR)
  for name in ("0001.mat", "1200.mat", "2326.mat"):
    x, y, vis, _ = load.read_label(os.path.join(PENN_DIR, name))
    seqs = load.video_sequences(x, y, vis, 17, int(name[:4]))
    pixels = load.to_pixels(seqs.poses, seqs.bounding_box_length, seqs.box_centre)
    np.testing.assert_allclose(pixels[..., 0], x[seqs.frame_index], atol=1e-6)
    np.testing.assert_allclose(pixels[..., 1], y[seqs.frame_index], atol=1e-6)
    assert set(seqs.video) == {int(name[:4])}


def test_penn_strip_over_video_frames(tmp_path):
  """A zero-velocity samples file of three real videos, drawn over stand-in
  video frames at their pixel positions."""
  need(PENN_DIR)
  labels = penn_labels(tmp_path / "labels", penn_validation_videos(2))
  samples = str(tmp_path / "penn.h5")
  code, _, err = penn(labels, model="zero_velocity", sample=None, samples_file=samples)
  assert code == 0, err
  with h5py.File(samples, "r") as f:
    video, frames = int(f["video"][5]), f["frame_index"][5]
    pixels = load.to_pixels(f["ground_truth"][5:6], f["bounding_box_length"][5:6],
                            f["box_centre"][5:6])[0]
  x, y, _, _ = load.read_label(os.path.join(PENN_DIR, "{:04d}.mat".format(video)))
  np.testing.assert_allclose(pixels[..., 0], x[frames[1:]], atol=1e-6)
  frames_dir = tmp_path / "frames" / "{:04d}".format(video)
  frames_dir.mkdir(parents=True)
  for frame in set(frames.tolist()):
    Image.fromarray(np.full((480, 640, 3), 90, np.uint8)).save(
        str(frames_dir / "{:06d}.jpg".format(frame + 1)))
  assert visualize.main(["penn", samples, "--index", "5", "--out", str(tmp_path / "out"),
                         "--frames_dir", str(tmp_path / "frames")]) == 0
  image = np.asarray(Image.open(str(tmp_path / "out" / "penn_{:04d}_5.png".format(video)))
                     .convert("L"), float)
  assert (np.abs(image - 90) < 3).mean() > 0.2 and image.std() > 10  # frames, skeletons on top


@pytest.mark.parametrize("every,labels", [
    (3, ["observed", "ground truth", "prediction"]),
    (17, ["observed"]),  # the observed frame alone
])
def test_penn_strip_has_a_legend_of_each_colour_it_draws(every, labels):
  rng = np.random.RandomState(0)
  gt, pred = rng.uniform(0, 400, (2, 17, 13, 2))
  figure = penn_figures.penn_strip(gt, pred, np.arange(17), 1, every)
  (legend,) = figure.legends
  assert [t.get_text() for t in legend.get_texts()] == labels
  shown = dict(zip(labels, (to_hex(line.get_color()) for line in legend.get_lines())))
  observed_panel, *forecast_panels = figure.axes
  assert {to_hex(line.get_color()) for line in observed_panel.get_lines()} == {shown["observed"]}
  for ax in forecast_panels:
    assert {to_hex(line.get_color()) for line in ax.get_lines()} == {shown["ground truth"],
                                                                     shown["prediction"]}
  assert len(set(shown.values())) == len(labels)
  box, frame = legend.get_window_extent(figure.canvas.get_renderer()), figure.bbox
  assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
  plt.close(figure)


@pytest.mark.parametrize("argv,message", [
    (["h36m", "{tmp}/none.h5"], "samples file {tmp}/none.h5 not found"),
    (["h36m", "{walk}", "--action", "running"], "has no action 'running' (it has: walking)"),
    (["h36m", "{bare}"], "{tmp}/bare.h5 has no 'expmap/gt/walking_0'"),
    (["penn", "{walk}"], "has no 'predictions'"),
    (["compare", "{walk}", "{walk}", "--labels", "a"], "--labels names 1 files, 2 were given"),
])
def test_errors_are_one_line_and_leave_nothing(zero_velocity_walking, tmp_path, argv, message):
  walk, _ = zero_velocity_walking
  bare = str(tmp_path / "bare.h5")
  with h5py.File(bare, "w") as f:
    f.create_dataset("mean_walking_error", data=np.zeros(10))
  values = {"tmp": str(tmp_path), "walk": walk, "bare": bare}
  out = tmp_path / "out"
  result = subprocess.run([sys.executable, os.path.join(ROOT, "visualize.py")] +
                          [a.format(**values) for a in argv] + ["--out", str(out)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
  assert result.returncode == 1
  assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
  assert message.format(**values) in result.stderr
  assert os.listdir(str(out)) == []


@pytest.mark.parametrize("argv,message", [
    ([], "error: choose h36m, penn, cmu or compare"),
    (["h36m"], "error: the following arguments are required: samples"),
    (["bogus"], "error: argument command: invalid choice: 'bogus'"),
    (["h36m", "x.h5", "--every", "zero"], "error: argument --every: invalid int value: 'zero'"),
    (["h36m", "x.h5", "--every", "0"], "error: --every must be at least 1"),
])
def test_argument_errors_are_one_line_with_status_1(argv, message):
  """As the training scripts': no usage lines, argparse's exit status 2 becomes 1."""
  result = subprocess.run([sys.executable, os.path.join(ROOT, "visualize.py")] + argv,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
  assert (result.returncode, result.stderr.count("\n")) == (1, 1), result.stderr
  assert result.stderr.startswith(message), result.stderr
