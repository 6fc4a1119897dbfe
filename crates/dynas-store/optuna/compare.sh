#!/usr/bin/env bash
# dynas-store beside Optuna's RDB storage on the same loopback PostgreSQL server and on
# SQLite: jobs (trials) per second with 1, 2 and 4 workers on trivial evaluations.
#
#   crates/dynas-store/optuna/compare.sh [JOBS [OPTUNA_TRIALS]]
#
# Installs optuna and psycopg2-binary from PyPI into the git-ignored target/optuna-venv, starts
# a throwaway PostgreSQL cluster (initdb/pg_ctl from /usr/lib/postgresql/*/bin, as the postgres
# user when run as root) on a free loopback port, and removes it at the end.
set -euo pipefail
cd "$(dirname "$0")/../../.."
jobs=${1:-2000}
trials=${2:-500}
venv=target/optuna-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet optuna psycopg2-binary
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/dynas-optuna-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); chown postgres "$dir"; fi
echo bench > "$dir/pw"
"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --pwfile="$dir/pw" --no-sync --no-instructions >/dev/null
stop() { "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap stop EXIT
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
    "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null
base="postgres:bench@127.0.0.1:$port"
PGPASSWORD=bench psql -q -h 127.0.0.1 -p "$port" -U postgres -c "CREATE DATABASE optuna" postgres

echo "== dynas-store (store_throughput; PostgreSQL: the same server)"
DYNAS_TEST_POSTGRES_URL="postgres://$base/postgres" \
    cargo run --quiet --release -p dynas-store --example store_throughput -- "$jobs"
echo "== Optuna $("$venv/bin/python" -c 'import optuna; print(optuna.__version__)') RDB storage"
"$venv/bin/python" crates/dynas-store/optuna/optuna_rdb.py "postgresql+psycopg2://$base/optuna" "$trials"
sqlite_dir=$(mktemp -d)
"$venv/bin/python" crates/dynas-store/optuna/optuna_rdb.py "sqlite:///$sqlite_dir/optuna.db" "$trials"
rm -rf "$sqlite_dir"
