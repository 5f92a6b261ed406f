#!/usr/bin/env bash
# `make bench`: the relay vs nginx vs the upstream directly, on this machine, in one run.
# Usage: bash bench/run.sh [--quick] [python -m bench options...]
# Installs what it needs when missing: nginx (Debian package, full runs only) and bench/requirements.txt into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [[ ! -x $PY ]]; then
  echo "bench: no .venv; run 'make venv' first" >&2
  exit 2
fi
quick=false
for arg in "$@"; do [[ $arg == --quick ]] && quick=true; done

# 1,000 concurrent streams need ~3,000 descriptors across client, nginx, gateway and upstream.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

if ! $PY -c 'import matplotlib' 2>/dev/null || [[ ! -x .venv/bin/py-spy ]]; then
  $PY -m pip install -q -r bench/requirements.txt || echo "bench: matplotlib unavailable; no chart" >&2
fi

if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  if [[ $quick == false && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "bench: installing nginx (Debian package)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  else
    echo "bench: nginx not installed; its column is skipped" >&2
  fi
fi

exec $PY -m bench "$@"
