#!/usr/bin/env bash
# Node.js and npm for the TypeScript client's tests (clients/ts): nothing to do when npm is on PATH;
# otherwise Debian's packages with apt-get when we are root (as on CI), else say what to install.
set -euo pipefail
if command -v npm > /dev/null && command -v node > /dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "installing Node.js and npm (Debian packages) for clients/ts"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm > /dev/null
    exit 0
fi
echo "clients/ts needs Node.js >= 18 and npm: install them (e.g. apt-get install nodejs npm)" >&2
exit 1
