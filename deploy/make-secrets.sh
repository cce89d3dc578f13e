#!/usr/bin/env bash
# Makes the compose secrets under deploy/secrets/ (see its README.md): API keys for a player app
# (write), a recommendation service (read) and an operator (admin), Prometheus's scrape key (admin)
# and Grafana's admin password. Only the keys' SHA-256 digests go into api-keys.json; the keys
# themselves are printed once, here. An existing file is never overwritten (delete it to renew).
set -euo pipefail
cd "$(dirname "$0")/secrets"
umask 022
chmod 700 .

new_secret() { openssl rand -hex 24; }
digest() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

if [ ! -e grafana-admin-password ]; then
    new_secret > grafana-admin-password
    echo "grafana: user admin, password in deploy/secrets/grafana-admin-password"
fi

if [ ! -e api-keys.json ]; then
    scrape=$(new_secret)
    player=$(new_secret)
    reader=$(new_secret)
    operator=$(new_secret)
    printf %s "$scrape" > prometheus-api-key
    cat > api-keys.json <<JSON
[{"name": "prometheus", "key": "sha256:$(digest "$scrape")", "scopes": ["admin"]},
 {"name": "player", "key": "sha256:$(digest "$player")", "scopes": ["write"], "rate_per_s": 500, "burst": 1000},
 {"name": "reader", "key": "sha256:$(digest "$reader")", "scopes": ["read"]},
 {"name": "operator", "key": "sha256:$(digest "$operator")", "scopes": ["admin", "read", "write"]}]
JSON
    echo "API keys (shown once; api-keys.json holds only their SHA-256 digests):"
    echo "  player   (write): $player"
    echo "  reader   (read):  $reader"
    echo "  operator (admin): $operator"
elif [ ! -e prometheus-api-key ]; then
    echo "api-keys.json exists but prometheus-api-key does not: add an admin key for Prometheus" >&2
    exit 1
fi
chmod 644 ./*.json grafana-admin-password prometheus-api-key 2> /dev/null || true
