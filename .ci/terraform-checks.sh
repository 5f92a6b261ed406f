#!/usr/bin/env bash
# Static checks of terraform/: `terraform fmt -check` (skipped when no terraform binary is on
# PATH) and checkov with zero failed checks. No provider is downloaded: init/validate can't run.
# checkov lives in its own virtualenv (.venv-checkov): it depends on bc-python-hcl2, which
# replaces the python-hcl2 package that the test suite uses from .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
CHECKOV_VENV="${CHECKOV_VENV:-.venv-checkov}"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
status=0

if command -v terraform >/dev/null 2>&1; then
  echo "== terraform fmt -check -recursive terraform"
  if ! terraform fmt -check -recursive -diff terraform; then
    echo "terraform fmt: files above need \`terraform fmt -recursive terraform\`" >&2
    status=1
  fi
else
  echo "== terraform fmt: skipped (no terraform binary on PATH)"
fi

if ! "$CHECKOV_VENV/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  echo "== installing checkov $CHECKOV_VERSION into $CHECKOV_VENV"
  "$PYTHON" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip install -q --upgrade pip
  "$CHECKOV_VENV/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
fi

echo "== checkov -d terraform (offline)"
# BC_SKIP_MAPPING + --skip-download: no calls to the Prisma Cloud API.
if ! BC_SKIP_MAPPING=TRUE "$CHECKOV_VENV/bin/checkov" -d terraform --framework terraform \
  --skip-download --quiet --compact; then
  echo "checkov: failed checks above (fix them, or skip one inline: #checkov:skip=ID:reason)" >&2
  status=1
fi

exit "$status"
