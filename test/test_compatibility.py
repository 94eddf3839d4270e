"""Every project file must run on Ascend's stack: Python 3.7 grammar and only
tensorflow.compat.v1 names that TensorFlow 1.15 has."""

import ast
import os
import subprocess

import pytest

from conftest import REFERENCE, ROOT, need

# Imports from tensorflow other than compat.v1, and why they are fine on TF 1.15.
ALLOWED_TF_IMPORTS = {
    "tensorflow.core.protobuf.rewriter_config_pb2":
        "protobuf module with the same path in TF 1.15 and 2.x (RewriterConfig)",
    "tensorflow.core.protobuf.config_pb2":
        "protobuf module with the same path in TF 1.15 and 2.x (ConfigProto)",
}
# Files that never run on Ascend's stack, and why.
CPU_STACK_ONLY = {
    "test/ascend_adapter.py": "stands in for TF 1.15 + npu_bridge on CPU TensorFlow 2.x",
}


def project_files():
  tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, stdout=subprocess.PIPE,
                           universal_newlines=True).stdout.split()
  untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "*.py"],
                             cwd=ROOT, stdout=subprocess.PIPE, universal_newlines=True).stdout.split()
  # a tracked file deleted in the work tree is no longer one of them
  return sorted(p for p in set(tracked + untracked) if os.path.isfile(os.path.join(ROOT, p)))


def parse(path):
  with open(os.path.join(ROOT, path), encoding="utf-8") as f:
    return ast.parse(f.read(), filename=path, feature_version=(3, 7))


def test_project_has_python_files():
  assert "tprnn/prism.py" in project_files() and "test/test_compatibility.py" in project_files()


@pytest.mark.parametrize("path", project_files())
def test_python37_grammar(path):
  parse(path)


def attribute_chains(tree, alias):
  """Every maximal dotted name alias.a.b... in the tree, as ['a', 'b', ...]."""
  chains = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Attribute):
      parts, inner = [], node
      while isinstance(inner, ast.Attribute):
        parts.insert(0, inner.attr)
        inner = inner.value
      if isinstance(inner, ast.Name) and inner.id == alias:
        chains.append(parts)
  # keep only maximal chains: drop those that are the prefix of a longer one
  return [c for c in chains if not any(len(o) > len(c) and o[:len(c)] == c for o in chains)]


def unknown_tf_names(tree, api):
  """Dotted names under the tensorflow.compat.v1 alias that TF 1.15 lacks. A
  name may continue past a class (Summary.Value, GraphKeys.X)."""
  aliases = [a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names if a.name == "tensorflow.compat.v1"]
  bad = []
  for alias in aliases:
    for chain in attribute_chains(tree, alias):
      known = [i for i in range(len(chain), 0, -1) if ".".join(chain[:i]) in api]
      if not known or (known[0] < len(chain) and not chain[known[0] - 1][0].isupper()):
        bad.append(".".join(chain))
  return bad


def test_tf115_names():
  with open(need(os.path.join(REFERENCE, "tf115_compat_v1_api.txt"))) as f:
    api = set(f.read().split())
  problems = []
  for path in sorted(set(project_files()) - set(CPU_STACK_ONLY)):
    tree = parse(path)
    problems += ["{}: tf.{}".format(path, name) for name in unknown_tf_names(tree, api)]
    for node in ast.walk(tree):
      modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
      for module in modules:
        if (module.startswith("tensorflow") and module != "tensorflow.compat.v1"
            and module not in ALLOWED_TF_IMPORTS):
          problems.append("{}: import {}".format(path, module))
  assert problems == []


def test_name_check_catches_tf2_only_names():
  api = {"nn.leaky_relu", "Summary", "train.Saver"}
  tree = ast.parse("import tensorflow.compat.v1 as tf\n"
                   "tf.nn.leaky_relu(x)\ntf.Summary.Value(tag='a')\ntf.train.Saver()\n"
                   "tf.nn.silu(x)\ntf.train.Saver.x.y\ntf.keras.layers.Dense(3)\n")
  assert sorted(unknown_tf_names(tree, api)) == ["keras.layers.Dense", "nn.silu"]
