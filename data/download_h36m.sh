#!/usr/bin/env bash
# Unpacks the H3.6M exponential-map release (h3.6m.zip) into data/h3.6m/: from a local
# copy given as the argument, else downloaded from $H36M_URL (default: the original
# address, which users report dead; see data/README.md).
#   bash data/download_h36m.sh [path/to/h3.6m.zip]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fail() { echo "error: $*" >&2; exit 1; }
url="${H36M_URL:-http://www.cs.stanford.edu/people/ashesh/h3.6m.zip}"
zip="${1:-}"
if [ -n "$zip" ]; then
  [ -f "$zip" ] || fail "$zip not found: give the path of h3.6m.zip"
  zip="$(cd "$(dirname "$zip")" && pwd)/$(basename "$zip")"
else
  zip="$here/h3.6m.zip"
  if ! curl -fsSL --connect-timeout 20 -o "$zip.part" "$url" 2>/dev/null; then
    rm -f "$zip.part"
    fail "cannot download $url (the original address is reported dead): get h3.6m.zip elsewhere" \
         "(data/README.md) and run: bash data/download_h36m.sh path/to/h3.6m.zip"
  fi
  mv "$zip.part" "$zip"
fi
cd "$here" || exit 1
unzip -q -o "$zip" || fail "$zip is not a readable zip archive"
[ -d h3.6m/dataset ] || fail "$zip holds no h3.6m/dataset folder: not the exp-map release"
[ -n "${1:-}" ] || rm -f "$zip"
echo "Unpacked $(ls h3.6m/dataset | wc -l) subject folders into $here/h3.6m/dataset"
