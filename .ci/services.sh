# shellcheck shell=bash
# Local services for the test suite: probe PostgreSQL and Redis on loopback, start them when they are
# installed here but down, and point the tests at whatever answers.
#
# Sourced (never executed) by the Makefile's `test` recipe and by .ci/run. It only defines functions and
# variables; it does not change the caller's shell options.
#
#   parrain_start_services       start PostgreSQL / Redis if installed and not answering (never fails)
#   parrain_prepare_test_env     the above, then export DATABASE_URL / REDIS_URL for what answers,
#                                print a loud banner for what is missing, and return 1 when
#                                PARRAIN_REQUIRE_SERVICES=1 and anything is missing
#
# Overridable: PARRAIN_PG_HOST, PARRAIN_PG_PORT, PARRAIN_PG_USER, PARRAIN_PG_DB, PARRAIN_REDIS_HOST,
# PARRAIN_REDIS_PORT, PARRAIN_REDIS_DB, PARRAIN_CHROMIUM.

PARRAIN_PG_HOST="${PARRAIN_PG_HOST:-127.0.0.1}"
PARRAIN_PG_PORT="${PARRAIN_PG_PORT:-5432}"
PARRAIN_PG_USER="${PARRAIN_PG_USER:-postgres}"
PARRAIN_PG_DB="${PARRAIN_PG_DB:-parrain}"
PARRAIN_REDIS_HOST="${PARRAIN_REDIS_HOST:-127.0.0.1}"
PARRAIN_REDIS_PORT="${PARRAIN_REDIS_PORT:-6379}"
PARRAIN_REDIS_DB="${PARRAIN_REDIS_DB:-0}"
PARRAIN_CHROMIUM="${PARRAIN_CHROMIUM:-/usr/bin/chromium}"

# parrain_probe postgres|redis HOST PORT -> 0 when a server of that kind is ready to serve.
# Speaks just enough of each protocol that a half-started server does not count: PostgreSQL must accept
# a startup packet for PARRAIN_PG_USER (trust auth), Redis must answer PING with PONG. Needs only python3.
parrain_probe() {
    python3 - "$1" "$2" "$3" "$PARRAIN_PG_USER" <<'PY'
import socket
import struct
import sys

kind, host, port, user = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ok = False
try:
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.settimeout(3)
        if kind == "postgres":
            params = b"user\0" + user.encode() + b"\0database\0postgres\0\0"
            body = struct.pack("!i", 196608) + params  # protocol 3.0
            sock.sendall(struct.pack("!i", len(body) + 4) + body)
            # 'R' is an authentication request: the server takes connections. 'E' is an error, such as
            # "the database system is starting up".
            ok = sock.recv(1) == b"R"
            if ok:
                sock.sendall(b"X\0\0\0\4")  # Terminate, so the server logs no broken connection
        else:
            sock.sendall(b"PING\r\n")
            ok = sock.recv(64).startswith(b"+PONG")
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}

parrain_pg_up() { parrain_probe postgres "$PARRAIN_PG_HOST" "$PARRAIN_PG_PORT"; }
parrain_redis_up() { parrain_probe redis "$PARRAIN_REDIS_HOST" "$PARRAIN_REDIS_PORT"; }

# parrain_wait_for FUNCTION SECONDS -> 0 as soon as FUNCTION succeeds, 1 after SECONDS.
parrain_wait_for() {
    local check="$1" deadline=$((SECONDS + $2))
    until "$check"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

# Starts the machine's own PostgreSQL cluster (Debian's pg_ctlcluster) if it is installed and down.
parrain_start_postgres() {
    parrain_pg_up && return 0
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d /etc/postgresql ]; then
        echo "services: PostgreSQL is not answering and pg_ctlcluster is not installed here" >&2
        return 1
    fi
    local version
    for version in $(ls /etc/postgresql); do
        [ -d "/etc/postgresql/$version/main" ] || continue
        echo "services: starting PostgreSQL $version (cluster main)" >&2
        pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
        break
    done
    parrain_wait_for parrain_pg_up 30
}

# Starts a throwaway Redis (nothing kept on disk) if redis-server is installed and nothing answers.
parrain_start_redis() {
    parrain_redis_up && return 0
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "services: Redis is not answering and redis-server is not installed here" >&2
        return 1
    fi
    echo "services: starting redis-server on port $PARRAIN_REDIS_PORT" >&2
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$PARRAIN_REDIS_PORT" --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log >&2 || true
    parrain_wait_for parrain_redis_up 15
}

parrain_start_services() {
    parrain_start_postgres || true
    parrain_start_redis || true
    return 0
}

parrain_prepare_test_env() {
    local -a missing=()
    parrain_start_services

    if parrain_pg_up; then
        export DATABASE_URL="postgres://${PARRAIN_PG_USER}@${PARRAIN_PG_HOST}:${PARRAIN_PG_PORT}/${PARRAIN_PG_DB}"
        echo "services: PostgreSQL answers: DATABASE_URL=$DATABASE_URL (tests use test_${PARRAIN_PG_DB})"
    else
        unset DATABASE_URL
        missing+=("PostgreSQL at ${PARRAIN_PG_HOST}:${PARRAIN_PG_PORT} is DOWN -> tests marked 'postgres' are SKIPPED; the rest run on SQLite")
    fi

    if parrain_redis_up; then
        export REDIS_URL="redis://${PARRAIN_REDIS_HOST}:${PARRAIN_REDIS_PORT}/${PARRAIN_REDIS_DB}"
        echo "services: Redis answers: REDIS_URL=$REDIS_URL"
    else
        unset REDIS_URL
        missing+=("Redis at ${PARRAIN_REDIS_HOST}:${PARRAIN_REDIS_PORT} is DOWN -> tests marked 'redis' and 'worker' are SKIPPED")
    fi

    if [ -x "$PARRAIN_CHROMIUM" ]; then
        echo "services: browser: $PARRAIN_CHROMIUM"
    else
        missing+=("$PARRAIN_CHROMIUM is MISSING (apt-get install chromium) -> tests marked 'browser' are SKIPPED")
    fi

    local tool found
    for tool in pgbouncer nginx; do
        found="$(command -v "$tool" || true)"
        [ -n "$found" ] || [ ! -x "/usr/sbin/$tool" ] || found="/usr/sbin/$tool"
        if [ -n "$found" ]; then
            echo "services: $tool: $found"
        else
            missing+=("$tool is MISSING (apt-get install $tool) -> tests marked '$tool' are SKIPPED")
        fi
    done

    if ((${#missing[@]} == 0)); then
        return 0
    fi

    local line
    {
        echo
        echo "################################################################################"
        echo "#"
        echo "#   WARNING: NOT EVERYTHING CAN BE TESTED HERE"
        echo "#"
        for line in "${missing[@]}"; do
            echo "#   - $line"
        done
        echo "#"
        if [ "${PARRAIN_REQUIRE_SERVICES:-}" = "1" ]; then
            echo "#   PARRAIN_REQUIRE_SERVICES=1: refusing to run a partial test suite."
        else
            echo "#   A green run here does NOT cover those groups."
            echo "#   Set PARRAIN_REQUIRE_SERVICES=1 to make this an error (CI does)."
        fi
        echo "#"
        echo "################################################################################"
        echo
    } >&2

    if [ "${PARRAIN_REQUIRE_SERVICES:-}" = "1" ]; then
        return 1
    fi
    return 0
}
