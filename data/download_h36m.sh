#!/usr/bin/env bash
# Downloads and unpacks the H3.6M exponential-map data into data/h3.6m/.
set -euo pipefail
cd "$(dirname "$0")"
url="${H36M_URL:-http://www.cs.stanford.edu/people/ashesh/h3.6m.zip}"
curl -fL -o h3.6m.zip.part "$url"
mv h3.6m.zip.part h3.6m.zip
unzip -q -o h3.6m.zip
rm h3.6m.zip
ls h3.6m/dataset
