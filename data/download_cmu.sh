#!/usr/bin/env bash
# Puts the CMU-Mocap exp-map release of Li et al. (CVPR 2018) into data/cmu_mocap/: from a
# local zip given as the argument (the repository's archive, or any zip holding a
# cmu_mocap/{train,test} folder), else downloaded from $CMU_URL (default: the archive of
# github.com/chaneyddtt/Convolutional-Sequence-to-Sequence-Model-for-Human-Dynamics).
#   bash data/download_cmu.sh [path/to/archive.zip]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fail() { echo "error: $*" >&2; exit 1; }
repo="https://github.com/chaneyddtt/Convolutional-Sequence-to-Sequence-Model-for-Human-Dynamics"
url="${CMU_URL:-$repo/archive/refs/heads/master.zip}"
zip="${1:-}"
[ ! -e "$here/cmu_mocap" ] || fail "$here/cmu_mocap exists: move it away to unpack again"
work="$(mktemp -d "$here/.cmu_mocap.XXXXXX")" || fail "cannot write in $here"
trap 'rm -rf "$work"' EXIT
if [ -n "$zip" ]; then
  [ -f "$zip" ] || fail "$zip not found: give the path of a zip holding cmu_mocap/"
else
  zip="$work/archive.zip"
  curl -fsSL --connect-timeout 20 -o "$zip" "$url" 2>/dev/null ||
    fail "cannot download $url: download the repository's zip from $repo yourself" \
         "and run: bash data/download_cmu.sh path/to/archive.zip"
fi
unzip -q "$zip" -d "$work/unpacked" 2>/dev/null || fail "$zip is not a readable zip archive"
found="$(find "$work/unpacked" -type d -name cmu_mocap | head -n 1)"
[ -n "$found" ] && [ -d "$found/train" ] && [ -d "$found/test" ] ||
  fail "$zip holds no cmu_mocap/{train,test} folder: not the exp-map release"
mv "$found" "$here/cmu_mocap" || fail "cannot move the release into $here/cmu_mocap"
complete=""
for action in basketball basketball_signal directing_traffic jumping running soccer walking washwindow; do
  n="$(ls "$here/cmu_mocap/train/$action/${action}"_[1-5].txt "$here/cmu_mocap/test/$action/${action}_1.txt" 2>/dev/null | wc -l)"
  [ "$n" -eq 6 ] && complete="$complete,$action"
done
[ -n "$complete" ] || complete=",none"
echo "Unpacked $here/cmu_mocap; the actions complete (--action): ${complete#,}"
