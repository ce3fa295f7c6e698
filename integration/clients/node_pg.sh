#!/usr/bin/env bash
# node pg (npm "pg", pinned in integration/node/package-lock.json) with named queries through
# pgcached's transaction pool, compared with direct. Run by integration/run.sh (DIRECT_URL,
# PGCACHED_URL set); installs the npm packages with `npm ci` when node_modules is stale.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../node"
command -v node >/dev/null || { echo "node not installed (apt-get install -y nodejs npm)"; exit 1; }
stamp=node_modules/.lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -d node_modules/pg || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
fi
node --version
exec node test_pg.js
