#!/bin/bash
# Lambda Web Adapter start script (the function's handler, see docs/aws.md): runs the `gateway` target with
# functions-framework's ASGI mode (gunicorn + uvicorn on uvloop), as Cloud Run functions does, on the host
# and port the adapter proxies to.
set -euo pipefail

# Lambda extracts the zip to $LAMBDA_TASK_ROOT (/var/task); locally, this script's directory.
root="${LAMBDA_TASK_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
# Dependencies sit at the zip root (or python/), layers add /opt/python; the runtime's own boto3 comes last.
export PYTHONPATH="$root:$root/python:/opt/python${PYTHONPATH:+:$PYTHONPATH}${LAMBDA_RUNTIME_DIR:+:$LAMBDA_RUNTIME_DIR}"
# One event loop serves every stream of the instance (main.py's targets are coroutines).
export FUNCTION_USE_ASGI=true
# gunicorn (>= 25.1) opens a control socket under $XDG_RUNTIME_DIR or ~/.gunicorn; on Lambda only /tmp
# is writable, and a failure there is logged at ERROR on every cold start.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# The adapter connects to AWS_LWA_HOST/HOST (default 127.0.0.1) and AWS_LWA_PORT/PORT (default 8080);
# functions-framework would otherwise bind 0.0.0.0.
host="${AWS_LWA_HOST:-${HOST:-127.0.0.1}}"
port="${AWS_LWA_PORT:-${PORT:-8080}}"
cd "$root"
# `python3 -m` rather than the `functions-framework` script: pip --target writes the build machine's
# interpreter into console-script shebangs.
exec python3 -m functions_framework --target "${FUNCTION_TARGET:-gateway}" --source "$root/main.py" \
    --host "$host" --port "$port"
