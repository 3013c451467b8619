#!/usr/bin/env bash
# The HTML report is checked in headless Chromium; this installs Debian's chromium when missing.
set -euo pipefail
command -v chromium >/dev/null && exit 0
echo "chromium not found; installing Debian's chromium package" >&2
if [ "$(id -u)" -ne 0 ]; then echo "need root to apt-get install chromium" >&2; exit 1; fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
