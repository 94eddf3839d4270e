"""The download scripts (data/download_{h36m,penn}.sh, scripts/download_published.sh) against
a real HTTP server on 127.0.0.1 serving the shared files laid out as each pinned copy: the
committed manifests equal the shared files' sizes and git blob hashes (recomputed here with
hashlib), only verified files are kept, damaged ones are fetched again, and a dead address, a
mirror that lacks files, or an archive member that differs is one line."""

import filecmp
import hashlib
import http.server
import os
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
import zipfile

import pytest

from conftest import H36M_DIR, PENN_DIR, REFERENCE, ROOT, need, run_command

H36M_SCRIPT = os.path.join(ROOT, "data", "download_h36m.sh")
PENN_SCRIPT = os.path.join(ROOT, "data", "download_penn.sh")
PUBLISHED_SCRIPT = os.path.join(ROOT, "scripts", "download_published.sh")
MANIFESTS = os.path.join(ROOT, "data", "manifests")
HUMAN_RUN = ("experiments/human/all/out_25/iterations_100006/rnn_size_1024/lr_0.01/tprnn_scale_2/"
             "tprnn_layers_2/dropout_keep_1.0/basic")
PENN_RUN = ("experiments/penn/out_16/iterations_100087/rnn_size_1024/lr_0.01/tprnn_scale_2/"
            "tprnn_layers_2/dropout_keep_1.0/basic/zero_init_velocity")
H36M_ACTIONS = ("walking", "eating", "smoking", "discussion", "directions", "greeting", "phoning",
                "posing", "purchases", "sitting", "sittingdown", "takingphoto", "waiting",
                "walkingdog", "walkingtogether")  # the release's 15 actions


def git_blob(data):
  return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def manifest_lines(name):
  """{path: (sha1, size or '-')} of a committed manifest."""
  with open(os.path.join(MANIFESTS, name)) as f:
    return {path: (sha1, size) for sha1, size, path in (line.split() for line in f)}


def read(path):
  with open(path, "rb") as f:
    return f.read()


class Mirror(object):
  """A loopback HTTP server serving `files` ({URL path: bytes}); `faults` maps a path to the
  faults of its next requests, in order ('flip': one byte changed, 'short': half the body,
  'slow': the body in slow pieces; the last one repeats); `requests` lists the paths asked for."""

  def __init__(self, files, faults=None):
    self.files, self.faults, self.requests = dict(files), dict(faults or {}), []
    mirror = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):
        path = urllib.parse.unquote(self.path.lstrip("/"))
        mirror.requests.append(path)
        if path not in mirror.files:
          self.send_error(404)
          return
        mirror.send(self, mirror.files[path], mirror.next_fault(path))

      def log_message(self, *args):
        pass

    self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
    self.thread.start()
    self.url = "http://127.0.0.1:{}".format(self.server.server_address[1])

  def next_fault(self, path):
    faults = self.faults.get(path) or [None]
    return faults.pop(0) if len(faults) > 1 else faults[0]

  def send(self, handler, data, fault):
    if fault == "flip":
      data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if fault == "short":
      data = data[:len(data) // 2]  # then the connection closes
    try:
      for start in range(0, len(data), 1 << 16):
        handler.wfile.write(data[start:start + (1 << 16)])
        if fault == "slow":
          time.sleep(0.05)
    except (BrokenPipeError, ConnectionResetError):
      pass  # the client stopped reading

  def stop(self):
    self.server.shutdown()
    self.server.server_close()
    self.thread.join()


@pytest.fixture
def mirrors():
  """Starts Mirror(files, faults); every one started is stopped after the test."""
  started = []

  def start(files, faults=None):
    started.append(Mirror(files, faults))
    return started[-1]

  yield start
  for mirror in started:
    mirror.stop()


def folder_files(folder, prefix=""):
  """{prefix + relative path: bytes} of every file under `folder`."""
  files = {}
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      files[prefix + os.path.relpath(path, folder)] = read(path)
  return files


def subset_manifest(tmp_path, name, paths):
  """A manifest holding the committed lines of `paths`."""
  lines = manifest_lines(name)
  manifest = tmp_path / "subset.txt"
  manifest.write_text("".join("{} {} {}\n".format(lines[p][0], lines[p][1], p) for p in paths))
  return str(manifest)


def download(script, *args):
  return run_command(["bash", script] + [str(a) for a in args], timeout=300)


def partial_files(folder):
  return [os.path.join(r, n) for r, _, names in os.walk(str(folder)) for n in names
          if n.endswith(".part")]


def walking_and_eating(folder):
  """{path: bytes} of the walking and eating files of an H3.6M folder: the shared copy's
  28, also where a user's data/ holds all 210."""
  return {p: d for p, d in folder_files(folder).items()
          if os.path.basename(p).startswith(("walking_", "eating_"))}


def assert_lines_match(lines, files):
  """Every one of `files` ({path: bytes}) has its manifest line: its size and blob hash."""
  assert files
  for path, data in files.items():
    assert lines[path] == (git_blob(data), str(len(data))), path


def test_h36m_manifest_is_the_release_and_matches_the_shared_files():
  lines = manifest_lines("h36m.txt")
  assert sorted(lines) == sorted("S{}/{}_{}.txt".format(s, a, i) for s in (1, 5, 6, 7, 8, 9, 11)
                                 for a in H36M_ACTIONS for i in (1, 2))
  assert lines["S1/walking_1.txt"][0] == "826940ee0deb993db00e941855176f7525fe063b"  # the pinned tree's
  for subject, action in ((8, "smoking"), (6, "posing"), (11, "sittingdown"), (9, "discussion")):
    for i in (1, 2):  # the pinned copy's test files inside the training set
      assert lines["S5/{}_{}.txt".format(action, i)][0] == lines["S{}/{}_{}.txt".format(
          subject, action, i)][0]
  assert_lines_match(lines, folder_files(need(H36M_DIR)))


def test_penn_manifest_matches_all_shared_labels():
  lines = manifest_lines("penn.txt")
  assert sorted(lines) == ["{:04d}.mat".format(i) for i in range(1, 2327)]
  assert lines["0001.mat"][0] == "bc1210684eb8b5ed9986005ffda0e9680da12d8d"  # the pinned tree's
  shared = folder_files(need(PENN_DIR))
  assert len(shared) == 2326
  assert_lines_match(lines, shared)


def test_published_manifest_matches_the_shared_indexes_and_meta():
  lines = manifest_lines("published.txt")
  expected = {  # the blobs the pinned commit's tree lists
      HUMAN_RUN + "/checkpoint-92000.data-00000-of-00001": "42a7002e318c830fbbda3c56038f6cbb8f52f264",
      HUMAN_RUN + "/checkpoint-92000.index": "2f95fb876bc83a8bc1b2800de03b8ab828d0c886",
      HUMAN_RUN + "/checkpoint-92000.meta": "8fa6ddcce6abc8fbd20eb23fc2c0a8769bece634",
      PENN_RUN + "/checkpoint-63000.data-00000-of-00001": "bfe0d31d92aba2e900d53c98e72953613bacb29f",
      PENN_RUN + "/checkpoint-63000.index": "07348b9dfbdf73258d8653a78a3b01dd0a6aa9b1",
      PENN_RUN + "/checkpoint-63000.meta": "a63bff9bf28e60fcc9fef0c4acac7915d0df72cd"}
  assert {path: sha1 for path, (sha1, _) in lines.items()} == expected
  for run, names in ((HUMAN_RUN, ("human/checkpoint-92000.index",)),
                     (PENN_RUN, ("penn/checkpoint-63000.index", "penn/checkpoint-63000.meta"))):
    for name in names:
      data = read(need(os.path.join(REFERENCE, "published_checkpoints", name)))
      path = run + "/" + os.path.basename(name)
      assert lines[path] == (git_blob(data), str(len(data))), path


def test_h36m_download_keeps_what_the_mirror_has_and_names_the_rest(mirrors, tmp_path):
  shared = walking_and_eating(need(H36M_DIR))
  mirror = mirrors(shared)
  dest = tmp_path / "data" / "h3.6m" / "dataset"
  code, out, err = download(H36M_SCRIPT, "--mirror", mirror.url, "--dest", dest)
  assert code == 1
  (line,) = err.splitlines()
  assert line.startswith("error: H3.6M: 182 of 210 files not verified in {}".format(dest))
  assert "S1/directions_1.txt (HTTP 404)" in line
  assert line.endswith("complete actions (--action): eating,walking")
  assert sorted(folder_files(dest)) == sorted(shared)
  assert all(filecmp.cmp(str(dest / p), os.path.join(H36M_DIR, p), shallow=False) for p in shared)
  assert not partial_files(tmp_path)
  del mirror.requests[:]
  code, _, err = download(H36M_SCRIPT, "--mirror", mirror.url, "--dest", dest)
  assert code == 1 and "182 of 210" in err
  assert len(mirror.requests) == 182 and not set(mirror.requests) & set(shared)


def test_penn_download_verifies_all_labels_and_a_second_run_fetches_nothing(mirrors, tmp_path):
  mirror = mirrors(folder_files(need(PENN_DIR)))
  dest = tmp_path / "labels"
  code, out, err = download(PENN_SCRIPT, "--mirror", mirror.url, "--dest", dest)
  assert code == 0, err
  assert out.splitlines()[-1] == "Penn Action: all 2326 files verified in {} (2326 new from {})".format(
      dest, mirror.url)
  assert len(os.listdir(str(dest))) == 2326 and len(mirror.requests) == 2326
  code, out, _ = download(PENN_SCRIPT, "--dest", dest, "--mirror", mirror.url)
  assert code == 0 and "(0 new from" in out and len(mirror.requests) == 2326


def test_the_environment_names_the_mirror(mirrors, tmp_path):
  mirror = mirrors(folder_files(need(PENN_DIR)))
  manifest = subset_manifest(tmp_path, "penn.txt", ["0001.mat", "0002.mat"])
  code, out, err = run_command(["bash", PENN_SCRIPT, "--manifest", manifest, "--dest",
                                str(tmp_path / "labels")], env={"TPRNN_PENN_MIRROR": mirror.url})
  assert code == 0, err
  assert sorted(mirror.requests) == ["0001.mat", "0002.mat"]


def test_a_damaged_file_is_fetched_again_and_never_kept(mirrors, tmp_path):
  shared = walking_and_eating(need(H36M_DIR))
  cut, flipped, good = "S1/walking_1.txt", "S5/walking_1.txt", "S5/eating_2.txt"
  mirror = mirrors(shared, faults={cut: ["short", None], flipped: ["flip"]})
  manifest = subset_manifest(tmp_path, "h36m.txt", [cut, flipped, good])
  dest = tmp_path / "dataset"
  code, _, err = download(H36M_SCRIPT, "--mirror", mirror.url, "--manifest", manifest, "--dest", dest)
  assert code == 1
  (line,) = err.splitlines()
  assert "1 of 3 files not verified" in line and "S5/walking_1.txt (content differs" in line
  assert sorted(folder_files(dest)) == [cut, good]
  assert read(str(dest / cut)) == shared[cut]
  assert mirror.requests.count(cut) == 2 and mirror.requests.count(flipped) == 3
  assert not partial_files(tmp_path)


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.parametrize("script", [H36M_SCRIPT, PENN_SCRIPT, PUBLISHED_SCRIPT])
def test_a_dead_address_is_one_line_and_leaves_nothing(script, tmp_path):
  args = ["human"] if script == PUBLISHED_SCRIPT else []
  dest = tmp_path / "new" / "dataset"
  code, out, err = download(script, *args, "--mirror", "http://127.0.0.1:{}".format(free_port()),
                            "--dest", dest)
  assert code == 1
  (line,) = err.splitlines()
  assert line.startswith("error: cannot reach http://127.0.0.1:") and "Connection refused" in line
  assert not (tmp_path / "new").exists()


def test_ctrl_c_keeps_the_verified_files_and_no_partial_one(mirrors, tmp_path):
  shared = walking_and_eating(need(H36M_DIR))
  mirror = mirrors(shared, faults={p: ["slow"] for p in shared if p != "S1/eating_1.txt"})
  dest = tmp_path / "dataset"
  proc = subprocess.Popen(["bash", H36M_SCRIPT, "--mirror", mirror.url, "--dest", str(dest)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
  try:
    deadline = time.time() + 60
    while not partial_files(dest) and time.time() < deadline:
      time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
  assert proc.returncode == 130
  assert err.strip().splitlines() == ["interrupted: the files verified so far are kept; run the "
                                      "same command to go on"]
  assert not partial_files(tmp_path)
  for path in folder_files(dest):
    assert read(str(dest / path)) == shared[path]


def test_a_local_zip_is_checked_and_a_differing_member_named(tmp_path):
  shared = walking_and_eating(need(H36M_DIR))
  good, changed = "S1/walking_1.txt", "S5/walking_2.txt"
  archive = str(tmp_path / "h3.6m.zip")
  with zipfile.ZipFile(archive, "w") as z:
    z.writestr("h3.6m/dataset/" + good, shared[good])
    z.writestr("h3.6m/dataset/" + changed, shared[changed].replace(b"0", b"1", 1))
  manifest = subset_manifest(tmp_path, "h36m.txt", [good, changed])
  dest = tmp_path / "dataset"
  code, _, err = download(H36M_SCRIPT, "--manifest", manifest, "--dest", dest, archive)
  assert code == 1
  (line,) = err.splitlines()
  assert "1 of 2 files not verified" in line
  assert "S5/walking_2.txt (h3.6m/dataset/S5/walking_2.txt in {}: content differs".format(
      archive) in line
  assert sorted(folder_files(dest)) == [good] and read(str(dest / good)) == shared[good]


def test_a_local_penn_tarball_is_unpacked_and_verified(tmp_path):
  names = ["{:04d}.mat".format(i) for i in (1, 2, 3, 2326)]
  archive = str(tmp_path / "Penn_Action.tar.gz")
  with tarfile.open(archive, "w:gz") as t:
    for name in names:
      t.add(os.path.join(need(PENN_DIR), name), arcname="Penn_Action/labels/" + name)
    t.add(os.path.join(PENN_DIR, "0004.mat"), arcname="Penn_Action/frames/0004.mat")
  manifest = subset_manifest(tmp_path, "penn.txt", names)
  dest = tmp_path / "labels"
  code, out, err = download(PENN_SCRIPT, "--manifest", manifest, "--dest", dest, archive)
  assert code == 0, err
  assert "all 4 files verified" in out and sorted(os.listdir(str(dest))) == names


def published_mirror(mirrors):
  """A mirror holding the shared index and meta files under the pinned paths."""
  files = {}
  for run, folder in ((HUMAN_RUN, "human"), (PENN_RUN, "penn")):
    for path, data in folder_files(os.path.join(REFERENCE, "published_checkpoints", folder)).items():
      files[run + "/" + path] = data
  return mirrors(files)


@pytest.mark.parametrize("model,missing", [
    ("penn", ["checkpoint-63000.data-00000-of-00001"]),
    ("human", ["checkpoint-92000.data-00000-of-00001", "checkpoint-92000.meta"])])
def test_the_published_command_names_the_missing_data_shard(model, missing, mirrors, tmp_path):
  need(os.path.join(REFERENCE, "published_checkpoints"))
  mirror = published_mirror(mirrors)
  code, out, err = download(PUBLISHED_SCRIPT, model, "--mirror", mirror.url, "--dest", tmp_path)
  assert code == 1
  (line,) = err.splitlines()
  assert "{} of 3 files not verified".format(len(missing)) in line
  for name in missing:
    assert "{}/{} (HTTP 404)".format(PENN_RUN if model == "penn" else HUMAN_RUN, name) in line
  run = tmp_path / (PENN_RUN if model == "penn" else HUMAN_RUN)
  assert sorted(os.listdir(str(run))) == sorted(
      set(["checkpoint-63000.index", "checkpoint-63000.meta"] if model == "penn"
          else ["checkpoint-92000.index"]))  # verified files stay; no flags.json yet


def test_the_published_script_wants_human_or_penn():
  code, _, err = download(PUBLISHED_SCRIPT, "cmu")
  assert code == 1 and err.splitlines() == [
      "error: expected human or penn first: bash scripts/download_published.sh human|penn "
      "[--mirror URL]"]


@pytest.mark.slow
def test_a_published_checkpoint_is_laid_out_for_the_readme_command(mirrors, tmp_path):
  """A checkpoint of the published shape (made here: one step at the authors' flags on
  synthetic data) served under the pinned names: the script lays it out with flags.json,
  and the command it prints, which the README shows, samples it from a fresh folder."""
  import tprnn_train_human
  from conftest import run_script, write_h36m
  data = write_h36m(str(tmp_path / "clone" / "data" / "h3.6m" / "dataset"), frames=400,
                    actions=H36M_ACTIONS)
  code, out, err = run_script(tprnn_train_human, [
      "--learning_rate", "0.01", "--iterations", "1", "--seq_length_out", "25", "--seed", "1",
      "--data_dir", data, "--train_dir", str(tmp_path / "made")])
  assert code == 0, err
  made = os.path.dirname(next(os.path.join(r, n) for r, _, names in os.walk(str(tmp_path / "made"))
                              for n in names if n == "checkpoint-1.index"))
  files = {"{}/checkpoint-92000{}".format(HUMAN_RUN, suffix):
               read(os.path.join(made, "checkpoint-1" + suffix))
           for suffix in (".data-00000-of-00001", ".index", ".meta")}
  manifest = tmp_path / "manifest.txt"
  manifest.write_text("".join("{} {} {}\n".format(git_blob(d), len(d), p) for p, d in files.items()))
  mirror = mirrors(files)
  clone = tmp_path / "clone"
  code, out, err = download(PUBLISHED_SCRIPT, "human", "--mirror", mirror.url, "--manifest", manifest,
                            "--dest", clone)
  assert code == 0, err
  command = out.splitlines()[-1].strip()
  with open(os.path.join(ROOT, "README.md")) as f:
    assert command in f.read()
  with open(os.path.join(ROOT, "docs", "published_flags", "human_checkpoint-92000.json")) as f:
    assert read(str(clone / HUMAN_RUN / "flags.json")) == f.read().encode()
  argv = command.split()
  assert argv[:2] == ["python", "tprnn_train_human.py"]
  code, out, err = run_command(["python3", os.path.join(ROOT, argv[1])] + argv[2:], timeout=600,
                               cwd=str(clone))
  assert code == 0, err
  assert "Loading model {}/checkpoint-92000".format(HUMAN_RUN) in out
  assert [line for line in out.splitlines() if line.split()[:1] == ["walkingtogether"]]
  assert os.path.isfile(str(clone / "samples.h5"))
