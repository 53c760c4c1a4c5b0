"""docker-compose.yml: valid against the Compose specification, and every service's command really runs.

There is no Docker engine on these machines, so each service's `command` runs natively with its
`environment` (compose interpolation applied), the way the container would run it, in `depends_on` order;
then its own healthcheck command is run until it passes. What Docker's network would do is done by hand:
service names resolve to 127.0.0.1 and each container port maps to a free local port. The postgres service is
represented by the local PostgreSQL (fresh schemas, dropped afterwards). Then the wiring is proven end to end:
a deal closed through the core's dashboard API flows through every mock into the core's PostgreSQL store,
and the Locust master swarms the billing mock through its worker. That run is marked `compose` (about a
minute on 2 shared cores): `make test-pg` and `make test-compose` run it, CI included.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import psycopg
import pytest
import yaml

from mocks.kernel.serving import free_port
from tests.integration.conftest import reachable_postgres

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = {"core", "crm", "erp", "billing", "cs", "postgres", "locust-master", "locust-worker"}
CONTAINER_PORTS = (8100, 8101, 8102, 8103, 8104, 5557, 8089)
HEALTH_DEADLINE_S = 90.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema, as vendored by check-jsonschema (vendor.compose-spec)."""
    source = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(source.read_text(encoding="utf-8"))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}` / `${VAR:-default}` interpolation."""
    return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def start_levels(services: dict[str, Any]) -> list[list[str]]:
    """Services grouped by depth in the depends_on graph: each group can start together once the previous
    one is healthy (what compose does with `condition: service_healthy`)."""
    depth: dict[str, int] = {}
    for name in depends_order(services):
        depth[name] = 1 + max((depth[d] for d in services[name].get("depends_on", {})), default=-1)
    return [sorted(n for n in services if depth[n] == level) for level in range(max(depth.values()) + 1)]


def depends_order(services: dict[str, Any]) -> list[str]:
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name in order:
            return
        for dep in services[name].get("depends_on", {}):
            visit(dep, (*path, name))
        order.append(name)

    for name in sorted(services):
        visit(name)
    return order


# -- the file --------------------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    doc = compose()
    schema = compose_schema()
    assert "services" in schema["properties"]
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
    # and the schema does catch a broken file
    crm = {**doc["services"]["crm"], "healthcheck": {"retries": 3, "tset": ["CMD", "true"]}}
    broken = {**doc, "services": {**doc["services"], "crm": crm}}
    assert any("tset" in e.message for e in validator.iter_errors(broken))


def test_every_service_runs_lockstep_serve_with_a_healthcheck_and_env_config() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert "healthcheck" in service and service["healthcheck"]["test"][0] == "CMD", name
        if name == "postgres":
            continue
        assert service["command"][:2] == ["lockstep", "serve"], name
        assert service["environment"]["LOCKSTEP_ADMIN_TOKEN"].startswith("${LOCKSTEP_ADMIN_TOKEN"), name
        for dep, cond in service.get("depends_on", {}).items():
            assert dep in services and cond == {"condition": "service_healthy"}, (name, dep)
    assert services["core"]["environment"]["LOCKSTEP_CORE_DATABASE_URL"].startswith("postgresql://")
    assert {"postgres", "crm", "erp", "billing", "cs"} <= set(services["core"]["depends_on"])
    assert depends_order(services).index("core") > depends_order(services).index("postgres")


# -- the services, natively ------------------------------------------------------------------------------


class Native:
    """Runs compose services as local processes: names -> 127.0.0.1, container ports -> free local ports."""

    def __init__(self, services: dict[str, Any], pg_url: str, schema_tag: str, logs: Path) -> None:
        self.services = services
        self.ports = {port: free_port() for port in CONTAINER_PORTS}
        self.pg_url = pg_url
        self.tag = schema_tag
        self.logs = logs
        self.env = {"LOCKSTEP_ADMIN_TOKEN": "compose-test-token", "LOCKSTEP_DB_PASSWORD": "unused"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        names = sorted(services, key=len, reverse=True)
        self._hosts = re.compile(r"(?<=//)(" + "|".join(map(re.escape, names)) + r")(?=:)|'("
                                 + "|".join(map(re.escape, names)) + r")'")
        self._ports = re.compile(r"(?<!\d)(" + "|".join(map(str, CONTAINER_PORTS)) + r")(?!\d)")

    def rewrite(self, value: str) -> str:
        value = interpolate(value, self.env)
        value = self._hosts.sub(lambda m: "127.0.0.1" if m.group(1) else "'127.0.0.1'", value)
        value = self._ports.sub(lambda m: str(self.ports[int(m.group(1))]), value)
        return value.replace("0.0.0.0", "127.0.0.1")

    def url(self, container_port: int) -> str:
        return f"http://127.0.0.1:{self.ports[container_port]}"

    def environment(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKSTEP_", "LOCUST_"))}
        for key, value in (self.services[name].get("environment") or {}).items():
            # a bare service name in a setting is a host name (LOCUST_MASTER_NODE_HOST: locust-master)
            env[key] = "127.0.0.1" if value in self.services else self.rewrite(str(value))
        if "LOCKSTEP_CORE_DATABASE_URL" in env:  # the postgres service is the local PostgreSQL
            env["LOCKSTEP_CORE_DATABASE_URL"] = self.pg_url
            for setting in ("DB_SCHEMA", "DBOS_SCHEMA", "CROSSWALK_SCHEMA"):
                env[f"LOCKSTEP_CORE_{setting}"] = f"{setting.lower()}_{self.tag}"
        return env

    def argv(self, command: list[str]) -> list[str]:
        args = [self.rewrite(str(a)) for a in command]
        if args[0] == "lockstep":
            return [sys.executable, "-m", "lockstep.cli", *args[1:]]
        if args[0] == "python":
            return [sys.executable, *args[1:]]
        return args

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(self.argv(self.services[name]["command"]), env=self.environment(name),
                                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_healthy(self, name: str) -> float:
        """Run the service's own healthcheck (natively) until it passes; seconds it took."""
        test = self.services[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        argv = self.argv(test[1:])
        if argv[0] == "pg_isready" and shutil.which("pg_isready") is None:
            probe = f"import psycopg; psycopg.connect({self.pg_url!r}, connect_timeout=2).close()"
            argv = [sys.executable, "-c", probe]
        started = time.monotonic()
        while True:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")
            if subprocess.run(argv, capture_output=True, timeout=30, env=self.environment(name)).returncode == 0:
                return time.monotonic() - started
            if time.monotonic() - started > HEALTH_DEADLINE_S:
                raise AssertionError(f"{name} not healthy in {HEALTH_DEADLINE_S:.0f} s: {self.log_tail(name)}")
            time.sleep(0.25)  # the next healthcheck run, bounded by the deadline

    def log_tail(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-1500:] if path.exists() else ""

    def stop(self) -> None:
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            del name


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Native]:
    pg_url, why = reachable_postgres()
    if pg_url is None:
        pytest.skip(f"the postgres service is represented by a local PostgreSQL; none answers: {why}")
    tag = uuid.uuid4().hex[:10]
    runner = Native(compose()["services"], pg_url, tag, tmp_path_factory.mktemp("compose-logs"))
    try:
        yield runner
    finally:
        runner.stop()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for setting in ("db_schema", "dbos_schema", "crosswalk_schema"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{setting}_{tag}" CASCADE')


@pytest.mark.compose
def test_each_service_command_runs_natively_and_becomes_healthy(native: Native) -> None:
    took: dict[str, float] = {}
    for level in start_levels(native.services):
        for name in level:
            if name != "postgres":
                native.start(name)
        for name in level:
            took[name] = native.wait_healthy(name)
    assert set(took) == SERVICES

    # The wiring works as compose configures it: the core (on PostgreSQL) subscribed itself to every mock
    # (--subscribe), and reaches their control APIs with the admin token from the environment.
    core = httpx.Client(base_url=native.url(8100), timeout=30)
    assert core.get("/health").json()["backend"] == "postgresql"
    deadline = time.monotonic() + HEALTH_DEADLINE_S
    while "subscribed" not in native.log_tail("core"):
        assert time.monotonic() < deadline, native.log_tail("core")
        time.sleep(0.1)  # waiting for the core's subscriber thread, bounded
    made = core.post("/ui/api/sandbox/actions/close-won", json={"account": "Compose GmbH", "country": "DE",
                                                               "tax_registration": "DE111222333"})
    assert made.status_code == 202, made.text
    key = made.json()["business_key"]
    while (flow := core.get(f"/flows/{key}")).status_code != 200 or flow.json()["status"] not in ("SUCCESS", "ERROR"):
        assert time.monotonic() < deadline, f"flow {key} did not finish: {flow.text[:300]}"
        time.sleep(0.2)  # polling the core, bounded
    assert flow.json()["status"] == "SUCCESS", flow.json()

    # Locust: the master has its worker and swarms the billing mock through it.
    deadline = time.monotonic() + HEALTH_DEADLINE_S
    locust = httpx.Client(base_url=native.url(8089), timeout=10)
    while len(locust.get("/stats/requests").json().get("workers", [])) < 1:  # the worker says hello
        assert time.monotonic() < deadline, native.log_tail("locust-worker")
        time.sleep(0.2)  # polling Locust's stats, bounded
    started = locust.post("/swarm", data={"user_count": 2, "spawn_rate": 2, "host": native.url(8103)})
    assert started.status_code == 200 and started.json()["success"], started.text
    try:
        while True:
            stats = locust.get("/stats/requests").json()
            total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
            if total["num_requests"] >= 10:
                break
            assert time.monotonic() < deadline, (stats, native.log_tail("locust-master"),
                                                 native.log_tail("locust-worker"))
            time.sleep(0.2)  # polling Locust's stats, bounded
        assert len(stats["workers"]) == 1
        assert total["num_failures"] == 0, stats.get("errors")
    finally:
        locust.get("/stop")
