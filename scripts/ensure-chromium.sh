#!/usr/bin/env bash
# The web console is checked in headless Chromium; this installs Debian's
# chromium when missing, and a CJK font so the console's Chinese pages render (not as empty boxes).
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-zenhei)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian's ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then echo "need root to apt-get install ${missing[*]}" >&2; exit 1; fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
