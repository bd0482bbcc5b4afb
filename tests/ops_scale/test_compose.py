"""docker-compose.yml's `scale` profile, read as Compose reads it (Docker does not run here): PgBouncer in front
of PostgreSQL, a streaming replica, nginx over two web processes, two workers and one beat."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.ops_scale.test_replica_router import settings_in_a_process

ROOT = Path(__file__).resolve().parents[2]
SCALE = {"pgbouncer", "postgres-replica", "migrate", "web-1", "web-2", "lb", "worker-1", "worker-2", "beat-1"}
SINGLE = {"postgres", "redis", "web", "worker", "beat"}
VALUES = {"POSTGRES_PASSWORD": "pw1", "REPLICATION_PASSWORD": "rp2", "SECRET_KEY": "k" * 50}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with (ROOT / "docker-compose.yml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def interpolate(value: str, values: dict[str, str] = VALUES) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error} (unset is an error), $$ for a `$`."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in values:
            return values[name]
        if op == ":?":
            raise KeyError(f"{name} is required: {rest}")
        return rest or ""

    return re.sub(r"\$\$|\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def words(command: Any) -> list[str]:
    return [str(w) for w in command] if isinstance(command, list) else shlex.split(str(command or ""))


def url(env: dict[str, Any], name: str):
    return urlsplit(interpolate(str(env[name])))


def app_services(compose) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if n in SCALE and s.get("image") == "parrain:latest"}


def test_the_scale_profile_adds_its_services_and_leaves_the_single_machine_ones_alone(compose):
    services = compose["services"]
    assert set(services) >= SCALE | SINGLE
    for name in SCALE:
        assert services[name]["profiles"] == ["scale"], name
    for name in SINGLE:
        assert "profiles" not in services[name], f"{name} must still start with a plain `docker compose up`"
    assert set(app_services(compose)) == {"migrate", "web-1", "web-2", "worker-1", "worker-2", "beat-1"}


def test_two_gunicorn_webs_two_workers_and_exactly_one_beat(compose):
    roles: dict[str, list[str]] = {"web": [], "worker": [], "beat": [], "migrate": []}
    for name, svc in app_services(compose).items():
        argv = words(svc["command"])
        if argv[0] == "gunicorn":
            assert argv[1] == "config.wsgi:application"
            assert "0.0.0.0:8000" in argv
            assert "migrate" not in argv  # the schema changes once, in `migrate`, not in each web
            roles["web"].append(name)
        elif argv[:4] == ["celery", "-A", "config", "worker"]:
            roles["worker"].append(name)
        elif argv[:4] == ["celery", "-A", "config", "beat"]:
            roles["beat"].append(name)
        elif argv[1:3] == ["manage.py", "migrate"]:
            roles["migrate"].append(name)
    assert {k: sorted(v) for k, v in roles.items()} == {
        "web": ["web-1", "web-2"],
        "worker": ["worker-1", "worker-2"],
        "beat": ["beat-1"],
        "migrate": ["migrate"],
    }


def test_the_app_goes_through_pgbouncer_reads_analytics_on_the_replica_and_shares_redis(compose):
    pgbouncer = compose["services"]["pgbouncer"]["environment"]
    for name, svc in app_services(compose).items():
        env = svc["environment"]
        database = url(env, "DATABASE_URL")
        if name == "migrate":
            # Schema changes go straight to PostgreSQL (CREATE INDEX CONCURRENTLY, locks held across statements).
            assert (database.hostname, database.port) == ("postgres", 5432)
        else:
            assert (database.hostname, database.port) == ("pgbouncer", int(pgbouncer["LISTEN_PORT"])), name
        assert env["DATABASE_POOLER"] == "pgbouncer"
        replica = url(env, "DATABASE_REPLICA_URL")
        assert (replica.hostname, replica.port, replica.path) == ("postgres-replica", 5432, "/parrain")
        assert url(env, "REDIS_URL").hostname == url(env, "CACHE_URL").hostname == "redis"
        assert str(env["DEBUG"]) == "false"
        assert str(env["SECRET_KEY"]).startswith("${SECRET_KEY:?")
        assert env["TRUSTED_PROXY_COUNT"] == "1"  # behind nginx


def test_pgbouncer_pools_by_transaction_in_front_of_postgres(compose):
    svc = compose["services"]["pgbouncer"]
    env = svc["environment"]
    assert env["POOL_MODE"] == "transaction"
    assert (url(env, "DATABASE_URL").hostname, url(env, "DATABASE_URL").port) == ("postgres", 5432)
    assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert env["LISTEN_PORT"] in " ".join(words(svc["healthcheck"]["test"]))


def test_the_replica_streams_from_the_primary_with_the_role_the_primary_creates(compose):
    replica = compose["services"]["postgres-replica"]
    script = words(replica["command"])[2]
    assert "pg_basebackup -h postgres -U replicator" in script
    assert " -R " in script  # standby.signal and primary_conninfo: a hot standby that follows the primary
    assert "hot_standby=on" in script
    assert str(replica["environment"]["PGPASSWORD"]).startswith("${REPLICATION_PASSWORD:?")
    init = compose["configs"]["postgres-replication"]["content"]
    assert "CREATE ROLE replicator WITH REPLICATION LOGIN" in init
    assert "host replication replicator all scram-sha-256" in init
    mounted = {c["source"]: c["target"] for c in compose["services"]["postgres"]["configs"]}
    assert mounted["postgres-replication"].startswith("/docker-entrypoint-initdb.d/")
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in replica["volumes"])
    assert "pgreplica" in compose["volumes"]


def test_nginx_balances_the_two_webs(compose):
    lb = compose["services"]["lb"]
    conf = interpolate(compose["configs"]["nginx-lb"]["content"])
    upstream = re.search(r"upstream parrain \{(.*?)\}", conf, re.S)
    assert upstream is not None
    assert re.findall(r"server ([\w-]+):(\d+)", upstream.group(1)) == [("web-1", "8000"), ("web-2", "8000")]
    assert "proxy_pass http://parrain;" in conf
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in conf
    assert {c["source"]: c["target"] for c in lb["configs"]}["nginx-lb"] == "/etc/nginx/conf.d/default.conf"
    assert lb["ports"] == ["127.0.0.1:${WEB_PORT:-8000}:80"]
    assert {n: d["condition"] for n, d in lb["depends_on"].items()} == {
        "web-1": "service_healthy",
        "web-2": "service_healthy",
    }


def test_every_dependency_waits_on_something_that_can_report_it(compose):
    services = compose["services"]
    for name, svc in services.items():
        for dependency, how in (svc.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on a missing {dependency}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck ({name} waits)"
            elif how["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{dependency} must run once"
    for name in SCALE - {"migrate", "beat-1"}:
        assert "healthcheck" in services[name], name
    for name in ("web-1", "web-2", "worker-1", "worker-2", "beat-1"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_shell_variables_are_escaped_from_compose(compose):
    """A `$VAR` meant for the container's shell must be written `$$VAR`, or Compose replaces it first."""
    texts = [c["content"] for c in compose["configs"].values()]
    texts += [" ".join(words(s.get("command"))) for s in compose["services"].values()]
    texts += [" ".join(words(s.get("healthcheck", {}).get("test"))) for s in compose["services"].values()]
    for text in texts:
        bare = re.findall(r"(?<!\$)\$(?![{$])\w+", text)
        assert not bare, bare


def test_the_scale_environment_gives_pooled_settings_with_a_replica(compose):
    env = {k: interpolate(str(v)) for k, v in compose["services"]["web-1"]["environment"].items()}
    built = settings_in_a_process(
        **{k: env[k] for k in ("DATABASE_URL", "DATABASE_REPLICA_URL", "DATABASE_POOLER", "REDIS_URL", "CACHE_URL")}
    )

    assert built["routers"] == ["config.db_router.ReplicaRouter"]
    for alias in ("default", "replica"):
        assert built["databases"][alias]["OPTIONS"]["prepare_threshold"] is None
        assert built["databases"][alias]["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert built["databases"]["default"]["HOST"] == "pgbouncer"


def test_interpolation_helper_reads_compose_syntax():
    assert interpolate("a${X:-d}b${Y}c$$d", {"Y": "y"}) == "adbyc$d"
    with pytest.raises(KeyError):
        interpolate("${MISSING:?set it}", {})
