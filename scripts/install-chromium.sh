#!/usr/bin/env bash
# Make Debian's headless-capable Chromium available for the /ops page browser test
# (tests/browser). Installs it with apt only when it is missing and we are root; otherwise says
# why not and exits 0, so the browser test skips itself with a clear reason instead.
set -euo pipefail

for candidate in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "install-chromium: found $candidate"
        exit 0
    fi
done
if [ "$(id -u)" != "0" ]; then
    echo "install-chromium: chromium is missing and we are not root; the browser test will be skipped"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: chromium is missing and there is no apt-get; the browser test will be skipped"
    exit 0
fi
echo "install-chromium: apt-get update && apt-get install chromium (Debian's package, for the /ops browser test)"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    echo "install-chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
else
    echo "install-chromium: apt-get could not install chromium; the browser test will be skipped"
fi
