#!/usr/bin/env bash
# npm run bench: telemq, Mosquitto and Aedes side by side, scenarios S1-S7 of ../shared/bench/run-peers.sh.
# Extra arguments go to run-peers.sh (e.g. --quick, --scenarios S1,S4, --reps 1).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED="$ROOT/../shared/bench"
[ -f "$SHARED/run-peers.sh" ] || { echo "bench: $SHARED/run-peers.sh not found" >&2; exit 2; }
for bin in mosquitto make cc; do command -v "$bin" >/dev/null || { echo "bench: '$bin' missing (apt-get install -y mosquitto libmosquitto-dev build-essential)" >&2; exit 2; }; done

# shared/ is read-only: run the harness from a writable copy so it can build mqtt-load beside itself. The copy and
# telemq's own build live outside the tree: build/ and dist/ may be cleaned or rebuilt by others while S7 restarts
# the broker.
WORK="${TMPDIR:-/tmp}/telemq-peer-bench"
mkdir -p "$WORK"
cp -u "$SHARED"/* "$WORK"/ && chmod u+w "$WORK"/*
rm -rf "$WORK/telemq" && mkdir -p "$WORK/telemq"
(cd "$ROOT" && npx tsc -p tsconfig.json --outDir "$WORK/telemq/dist")
cp "$ROOT/package.json" "$WORK/telemq/" && ln -sfn "$ROOT/node_modules" "$WORK/telemq/node_modules"

STAMP=$(date -u +%Y%m%dT%H%MZ)
OUT="$ROOT/bench/results/tmp/peers-$STAMP"
mkdir -p "$OUT"
# In-memory storage, as Mosquitto runs with persistence false (a bare `telemq broker` keeps sessions in SQLite).
"$WORK/run-peers.sh" --out "$OUT" --extra-name telemq \
  --extra "node $WORK/telemq/dist/cli/main.js broker --host 127.0.0.1 --port {PORT} --log-level warn --memory" "$@" >&2

REPORT="$ROOT/bench/results/peers-$STAMP.md"
node "$ROOT/bench/peers-report.mjs" "$OUT/results.jsonl" "$OUT/table.md" "$(git -C "$ROOT" rev-parse --short HEAD)" >"$REPORT"
cat "$REPORT"
tail -n 1 "$REPORT" | sed -n 's/^<!-- \(.*\) -->$/\1/p'
