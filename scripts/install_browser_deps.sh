#!/usr/bin/env bash
# Installs what the browser test of `python -m benchmarks.play` needs when it is missing: Debian's chromium
# (apt) and Playwright's Python package (pip). Playwright drives that system chromium through
# executable_path; no browser is ever downloaded (never run `playwright install`).
# Usage: scripts/install_browser_deps.sh [PYTHON]   (default: python3; CI passes its virtual environment's)
set -euo pipefail
PYTHON="${1:-python3}"
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian package: chromium"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
fi
if ! "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "installing Python package: playwright"
  "$PYTHON" -m pip install -q "playwright>=1.40"
fi
echo "browser test dependencies: $(chromium --version 2>/dev/null | head -n1); playwright $("$PYTHON" -c \
  'import importlib.metadata as m; print(m.version("playwright"))')"
