#!/usr/bin/env bash
# Install headless Chromium and its WebDriver from Debian packages (idempotent).
# Used by the dashboard browser test (tests/test_dashboard_browser.py) and by CI, which runs as root.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "[browser] chromium and chromedriver present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-noto-cjk >/dev/null
echo "[browser] installed: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
