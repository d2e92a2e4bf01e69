#!/usr/bin/env bash
# PostgreSQL and Redis for the test suite, as plain processes (no systemd, no Docker).
#
#   eval "$(.ci/services.sh start)"   # start (or reuse) both; prints the two export lines
#   .ci/services.sh stop              # stop both
#   source .ci/services.sh            # (.ci/run) defines concord_services_start / _stop
#
# PostgreSQL: a throwaway cluster (fsync off) in $CONCORD_SERVICES_DIR/pg, owned by an
# unprivileged user when run as root (initdb refuses root), on 127.0.0.1:25432 with trust auth,
# a role `concord` (CREATEDB: the tests make a database per test module), a database
# `concord_test`, and pg_stat_statements preloaded (a cluster running without it is restarted).
# Redis: 127.0.0.1:26379, no persistence. Ports stay below 32768 (higher ones collide with the
# ephemeral range). Starting twice reuses what is already running.

CONCORD_SERVICES_DIR=${CONCORD_SERVICES_DIR:-/tmp/concord-services}
CONCORD_PG_PORT=${CONCORD_PG_PORT:-25432}
CONCORD_REDIS_PORT=${CONCORD_REDIS_PORT:-26379}
CONCORD_SERVICES_USER=${CONCORD_SERVICES_USER:-concordci}

_concord_pg_bin() {
  local d found=""
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && found=$d; done
  if [ -n "$found" ]; then echo "$found"; return; fi
  dirname "$(command -v initdb || command -v pg_ctl || echo /nonexistent/x)"
}

# Run a command as the cluster's owner (root: the unprivileged user; otherwise ourselves).
_concord_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$CONCORD_SERVICES_USER" -- "$@"
  else
    "$@"
  fi
}

_concord_pg_start() {
  local bin pgdir
  bin=$(_concord_pg_bin)
  if [ ! -x "$bin/pg_ctl" ]; then
    echo "services: PostgreSQL not installed (apt-get install postgresql)" >&2
    return 1
  fi
  pgdir=$CONCORD_SERVICES_DIR/pg
  if [ "$(id -u)" = 0 ] && ! id "$CONCORD_SERVICES_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$CONCORD_SERVICES_USER"
  fi
  mkdir -p "$CONCORD_SERVICES_DIR"
  chmod 755 "$CONCORD_SERVICES_DIR"
  if [ ! -s "$pgdir/PG_VERSION" ]; then
    rm -rf "$pgdir"
    mkdir -p "$pgdir"
    chmod 700 "$pgdir"
    [ "$(id -u)" = 0 ] && chown "$CONCORD_SERVICES_USER" "$pgdir"
    _concord_as_owner "$bin/initdb" -D "$pgdir" -U postgres --auth=trust -E UTF8 \
      --locale=C.UTF-8 >"$CONCORD_SERVICES_DIR/initdb.log" 2>&1 || {
      cat "$CONCORD_SERVICES_DIR/initdb.log" >&2
      return 1
    }
  fi
  # pg_stat_statements: tests/bench/cross_instance.py counts statements per delivered change.
  # Preloaded where the distribution ships it (Debian: in the server package itself).
  local preload=""
  [ -e "$bin/../lib/pg_stat_statements.so" ] &&
    preload="-c shared_preload_libraries=pg_stat_statements"
  local opts="-c listen_addresses=127.0.0.1 -p $CONCORD_PG_PORT -c unix_socket_directories=$pgdir \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 $preload"
  local action=start libs
  if _concord_as_owner "$bin/pg_ctl" status -D "$pgdir" >/dev/null 2>&1; then
    # Running: reuse it, unless an older start left pg_stat_statements out.
    if ! libs=$("$bin/psql" -h 127.0.0.1 -p "$CONCORD_PG_PORT" -U postgres -d postgres -qtAc \
      "SHOW shared_preload_libraries" 2>&1); then
      echo "services: PostgreSQL runs in $pgdir but does not answer: $libs" >&2
      return 1
    fi
    action=""
    if [ -n "$preload" ] && [[ "$libs" != *pg_stat_statements* ]]; then
      echo "services: restarting PostgreSQL in $pgdir to load pg_stat_statements" >&2
      action=restart
    fi
  fi
  if [ -n "$action" ]; then
    _concord_as_owner "$bin/pg_ctl" "$action" -D "$pgdir" -w -t 60 -m fast \
      -l "$pgdir/server.log" -o "$opts" >/dev/null || {
      tail -n 20 "$pgdir/server.log" >&2
      return 1
    }
  fi
  "$bin/psql" -h 127.0.0.1 -p "$CONCORD_PG_PORT" -U postgres -d postgres -qtA -v ON_ERROR_STOP=1 \
    >/dev/null <<'SQL'
SELECT 'CREATE ROLE concord LOGIN CREATEDB PASSWORD ''concord'''
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'concord')\gexec
SELECT 'CREATE DATABASE concord_test OWNER concord'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'concord_test')\gexec
SQL
}

_concord_redis_start() {
  if ! command -v redis-server >/dev/null; then
    echo "services: Redis not installed (apt-get install redis-server)" >&2
    return 1
  fi
  if redis-cli -h 127.0.0.1 -p "$CONCORD_REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    return 0
  fi
  mkdir -p "$CONCORD_SERVICES_DIR/redis"
  redis-server --bind 127.0.0.1 --port "$CONCORD_REDIS_PORT" --save "" --appendonly no \
    --daemonize yes --dir "$CONCORD_SERVICES_DIR/redis" \
    --pidfile "$CONCORD_SERVICES_DIR/redis/redis.pid" \
    --logfile "$CONCORD_SERVICES_DIR/redis/redis.log" >/dev/null
  local _
  for _ in $(seq 100); do
    redis-cli -h 127.0.0.1 -p "$CONCORD_REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "services: redis-server did not answer on port $CONCORD_REDIS_PORT" >&2
  return 1
}

concord_services_start() {
  _concord_pg_start || return 1
  _concord_redis_start || return 1
  export CONCORD_TEST_POSTGRES_URL="postgresql://concord:concord@127.0.0.1:$CONCORD_PG_PORT/concord_test"
  export CONCORD_TEST_REDIS_URL="redis://127.0.0.1:$CONCORD_REDIS_PORT/0"
}

concord_services_stop() {
  local bin pgdir=$CONCORD_SERVICES_DIR/pg
  bin=$(_concord_pg_bin)
  if [ -s "$pgdir/postmaster.pid" ] && [ -x "$bin/pg_ctl" ]; then
    _concord_as_owner "$bin/pg_ctl" stop -D "$pgdir" -m fast -w >/dev/null 2>&1 || true
  fi
  if command -v redis-cli >/dev/null; then
    redis-cli -h 127.0.0.1 -p "$CONCORD_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      concord_services_start
      echo "export CONCORD_TEST_POSTGRES_URL='$CONCORD_TEST_POSTGRES_URL'"
      echo "export CONCORD_TEST_REDIS_URL='$CONCORD_TEST_REDIS_URL'"
      ;;
    stop) concord_services_stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
  esac
fi
