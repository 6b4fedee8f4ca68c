"""docker-compose.temporal.yml and deploy/: what can be checked without a Docker engine.

The compose file is parsed and held to the production shape of docs/deploy.md;
the search-attribute registration script runs for real against a
fresh Temporal dev server.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from seatflow.domain.search_attributes import ALL, REGISTRATION

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.temporal.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
REGISTER_SCRIPT = ROOT / "deploy" / "temporal" / "register-search-attributes.sh"

ONE_SHOT = {"temporal-admin-tools", "migrate"}
SECRET_KEY = re.compile(r"PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_KEY", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")
# `${NAME:?message}`: required, no default; the value must come from .env.
REQUIRED_ONLY = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]*\}$")
URL_CREDENTIALS = re.compile(r"^(\$\{[^}]*\}):(\$\{[^}]*\})$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def depends(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def test_compose_runs_temporal_on_postgres_ui_admin_tools_app_db_and_worker(
    services: dict[str, dict[str, Any]],
) -> None:
    assert {"temporal-db", "temporal", "temporal-ui", "temporal-admin-tools", "app-db",
            "migrate", "worker", "intake-relay"} <= set(services)
    temporal = env_of(services["temporal"])
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == "temporal-db"
    assert services["temporal-db"]["image"].startswith("postgres:")
    assert services["app-db"]["image"].startswith("postgres:")
    # Temporal and the application keep separate databases and volumes.
    assert services["temporal-db"]["volumes"] != services["app-db"]["volumes"]


def test_every_service_has_a_pinned_image_or_a_build(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if "build" in service:
            build = service["build"]
            dockerfile = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
            continue
        image = service.get("image", "")
        repo, _, tag = image.rpartition(":")
        assert repo and tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and "$" not in tag, f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{name}: tag {tag!r} names no version"


def test_long_running_services_have_health_checks_and_one_shots_do_not_restart(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} is a one-shot step"
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
        assert check["test"], f"{name}: empty health check"
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted"


def test_worker_waits_for_healthy_server_and_database_and_completed_setup(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = depends(services["worker"])
    assert worker["temporal"] == "service_healthy"
    assert worker["app-db"] == "service_healthy"
    assert worker["temporal-admin-tools"] == "service_completed_successfully"
    assert worker["migrate"] == "service_completed_successfully"
    assert depends(services["temporal"])["temporal-db"] == "service_healthy"
    assert depends(services["temporal-admin-tools"])["temporal"] == "service_healthy"
    assert depends(services["migrate"])["app-db"] == "service_healthy"
    assert services["migrate"]["command"] == ["seatflow", "db", "upgrade"]
    assert services["worker"]["command"] == ["python", "-m", "worker"]
    assert services["intake-relay"]["command"] == ["python", "-m", "seatflow.intake.relay"]
    # Scaling with --scale needs no fixed container names or host ports on workers.
    for name in ("worker", "intake-relay"):
        assert "container_name" not in services[name]
        assert "ports" not in services[name]


def test_admin_tools_register_the_search_attributes_the_workflow_upserts(
    services: dict[str, dict[str, Any]],
) -> None:
    admin = services["temporal-admin-tools"]
    pairs = env_of(admin)["SEATFLOW_SEARCH_ATTRIBUTES"].split(",")
    registered = dict(pair.split("=", 1) for pair in pairs)
    assert registered == REGISTRATION
    assert set(registered) == {key.name for key in ALL}
    mounts = " ".join(admin["volumes"])
    assert "./deploy/temporal/register-search-attributes.sh" in mounts
    assert "register-search-attributes.sh" in " ".join(admin["entrypoint"])
    assert "SEATFLOW_SEARCH_ATTRIBUTES" in REGISTER_SCRIPT.read_text()


def test_worker_and_relay_share_the_contract_configuration(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("worker", "intake-relay", "migrate"):
        env = env_of(services[name])
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert "@app-db:5432/" in env["DATABASE_URL"]
        for flag in ("FEATURE_ASSIGNMENT_PIPELINE_V3", "FEATURE_ASSIGNMENT_PIPELINE_V3_SHADOW",
                     "FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL",
                     "FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT",
                     "FEATURE_ASSIGNMENT_PIPELINE_V3_RESTAURANTS", "SEATFLOW_TASK_QUEUE"):
            assert env[flag].startswith(f"${{{flag}"), f"{name}: {flag} not from .env"


def test_no_secrets_in_the_compose_file(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in env_of(service).items():
            if SECRET_KEY.search(key):
                assert REQUIRED_ONLY.match(value), (
                    f"{name}: {key} must come from .env as ${{VAR:?...}}, not {value!r}"
                )
            if "://" in value and "@" in value:
                userinfo = value.split("://", 1)[1].rsplit("@", 1)[0]
                match = URL_CREDENTIALS.match(userinfo)
                assert match, f"{name}: {key} credentials are not from .env: {userinfo!r}"
                assert REQUIRED_ONLY.match(match.group(2)), f"{name}: {key} has an inline password"


def test_every_required_variable_is_documented_in_env_example() -> None:
    text = "\n".join(line for line in COMPOSE.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    required = {m.group(1) for m in INTERPOLATION.finditer(text)
                if (m.group(2) or "").startswith(":?")}
    assert required, "credentials should be required variables"
    documented = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line}
    assert required <= documented, f"not in .env.example: {sorted(required - documented)}"
    for line in ENV_EXAMPLE.read_text().splitlines():
        key, _, value = line.partition("=")
        if not line.startswith("#") and SECRET_KEY.search(key):
            assert value == "", f".env.example must not ship a value for {key}"


def test_databases_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    for name in ("temporal-db", "app-db"):
        mounts = compose["services"][name]["volumes"]
        sources = {m.split(":", 1)[0] for m in mounts}
        assert sources & named, f"{name} does not use a named volume"


def test_dockerfile_runs_as_non_root_with_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    for image in froms:
        resolved = args.get(image.strip("${}"), image)
        assert ":" in resolved and not resolved.endswith(":latest"), resolved
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK ", text, re.MULTILINE)
    assert re.search(r'^CMD \["python", "-m", "worker"\]', text, re.MULTILINE)
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE):
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert (ROOT / "deploy" / "healthcheck.py").is_file()


def test_dynamic_config_mounted_by_the_server_exists(
    services: dict[str, dict[str, Any]],
) -> None:
    temporal = services["temporal"]
    path = env_of(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    source = temporal["volumes"][0].split(":", 1)[0]
    config = ROOT / source / Path(path).name
    assert config.is_file()
    assert isinstance(yaml.safe_load(config.read_text()), dict)


def test_deploy_doc_covers_scaling_upgrades_and_the_rollout_gates() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    for needle in ("--scale worker=", "workflow.patched", "tests/histories", "worker versioning",
                   "seatflow shadow-report", "seatflow report", "FEATURE_ASSIGNMENT_PIPELINE_V3",
                   "docker compose -f docker-compose.temporal.yml up"):
        assert needle in text, needle


async def test_registration_script_registers_search_attributes_idempotently() -> None:
    """The admin-tools step, run for real with the pip-installed `temporal` CLI."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.testing import WorkflowEnvironment

    from tests.conftest import BIN, binary

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"), dev_server_log_level="error", ui=False
    )
    try:
        address = env.client.service_client.config.target_host
        run_env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
                   "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": env.client.namespace,
                   "SEATFLOW_SEARCH_ATTRIBUTES": ",".join(
                       f"{k}={v}" for k, v in REGISTRATION.items())}
        for _ in range(2):  # the second run finds them all registered
            done = await asyncio.to_thread(
                subprocess.run, ["sh", str(REGISTER_SCRIPT)], check=False, env=run_env,
                capture_output=True, text=True, timeout=60,
            )
            assert done.returncode == 0, done.stderr
        assert done.stdout.count("already registered") == len(REGISTRATION)
        listed = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=env.client.namespace)
        )
        names = {"Keyword": 2, "Int": 3}  # IndexedValueType enum values
        for name, kind in REGISTRATION.items():
            assert listed.custom_attributes[name] == names[kind]
    finally:
        await env.shutdown()
