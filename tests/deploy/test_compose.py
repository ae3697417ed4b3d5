"""docker-compose.yml, the Dockerfile and .env.example agree with the real CLI, settings and
routes, so the deployment files cannot silently drift from the code they run."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from fastapi.testclient import TestClient

from service.app import create_app
from service.security import allowed_hosts, host_allowed
from service.settings import Settings
from studies.cli import build_app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# Services that run the avatune image (the API and the workers), as opposed to PostgreSQL.
AVATUNE_SERVICES = sorted(name for name, service in SERVICES.items() if "build" in service)
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


# typer vendors its own click, so commands are handled by duck typing, not click's classes.
Command = Any


@functools.cache
def cli() -> Command:
    """The real `avatune` command tree (every entry-point layer), as click-style objects."""
    return typer.main.get_command(build_app())


def subcommands(command: Command) -> dict[str, Command]:
    """A group's subcommands by name; none for a plain command."""
    if not hasattr(command, "list_commands"):
        return {}
    ctx = command.context_class(command)
    return {name: command.get_command(ctx, name) for name in command.list_commands(ctx)}


def resolve(args: list[str]) -> tuple[Command, list[str]]:
    """The command `avatune ARGS...` runs and the arguments left for it to parse."""
    command = cli()
    while subcommands(command) and args and not args[0].startswith("-"):
        sub = subcommands(command).get(args[0])
        assert sub is not None, f"`avatune` has no command {args[0]!r}"
        command, args = sub, args[1:]
    assert not subcommands(command), f"{command.name} is a group, not a command"
    return command, args


def cli_envvars(command: Command) -> set[str]:
    """Every environment variable a CLI option of `command` or its subcommands reads."""
    names: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        names.update([envvar] if isinstance(envvar, str) else envvar or ())
    for sub in subcommands(command).values():
        names |= cli_envvars(sub)
    return names


def interpolate(value: str) -> str:
    """`value` as compose would see it with no .env: defaults used, required ones set."""
    return INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) in ("-", ":-") else "x", value)


def env_example() -> set[str]:
    """Variable names in .env.example, set or shown commented out."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.M))


def known_avatune_variables() -> set[str]:
    """AVATUNE_* names something reads: Settings fields and CLI options' envvars."""
    fields = {f"AVATUNE_{name.upper()}" for name in Settings.model_fields}
    return fields | cli_envvars(cli())


def test_the_services_exist_and_scale() -> None:
    assert {"db", "api", "worker"} <= set(SERVICES)
    assert {"api", "worker"} <= set(AVATUNE_SERVICES)
    images = {SERVICES[name]["image"] for name in AVATUNE_SERVICES}
    assert len(images) == 1, f"API and workers must share one image, not {images}"
    for name in AVATUNE_SERVICES:
        if name != "api":
            assert "container_name" not in SERVICES[name], f"{name} could not be scaled"
            assert "ports" not in SERVICES[name], f"{name} could not be scaled"


def test_every_command_and_option_exists_in_the_cli() -> None:
    commands = [(name, SERVICES[name]["command"]) for name in AVATUNE_SERVICES]
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M)
    assert cmd is not None, "the Dockerfile has no exec-form CMD"
    commands.append(("Dockerfile CMD", yaml.safe_load(cmd.group(1))))
    for where, argv in commands:
        args = [interpolate(str(arg)) for arg in argv]
        command, rest = resolve(args)
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for arg in rest:
            if arg.startswith("-"):
                assert arg in options, f"{where}: `avatune {command.name}` has no option {arg}"
        # parse for real: option types and ranges (e.g. --workers 1..64) are checked
        command.make_context(command.name, rest)


def test_the_api_serves_postgres_on_all_interfaces_with_several_processes() -> None:
    api = SERVICES["api"]
    command, rest = resolve([interpolate(str(arg)) for arg in api["command"]])
    params = command.make_context(command.name, rest).params
    assert command.name == "serve", "the API must run `avatune serve` (it migrates first)"
    assert params["host"] == "0.0.0.0" and params["workers"] > 1
    url = api["environment"]["AVATUNE_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@db:5432/" in url
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert "AVATUNE_TOKEN:?" in api["environment"]["AVATUNE_TOKEN"], "the token is required"


def test_the_database_is_healthchecked_and_persistent() -> None:
    db = SERVICES["db"]
    assert db["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volumes = [volume.split(":")[0] for volume in db["volumes"]]
    assert any(volume in COMPOSE["volumes"] for volume in volumes), "data must be in a volume"


def test_workers_reach_the_api_with_the_token() -> None:
    for name in AVATUNE_SERVICES:
        if name == "api":
            continue
        worker = SERVICES[name]
        command, rest = resolve([interpolate(str(arg)) for arg in worker["command"]])
        assert command.name == "worker"
        assert command.make_context(command.name, rest).params["server"] == "http://api:8000"
        assert "AVATUNE_TOKEN:?" in worker["environment"]["AVATUNE_TOKEN"]
        assert worker["depends_on"]["api"]["condition"] == "service_healthy"


def worker_params(name: str) -> dict[str, Any]:
    """The parsed `avatune worker` options a compose service runs with."""
    command, rest = resolve([interpolate(str(arg)) for arg in SERVICES[name]["command"]])
    assert command.name == "worker", name
    return command.make_context(command.name, rest).params


def gpu_reservations(name: str) -> list[dict[str, Any]]:
    """The devices a service reserves (none for a CPU service)."""
    resources = SERVICES[name].get("deploy", {}).get("resources", {})
    return resources.get("reservations", {}).get("devices", [])


def test_each_gpu_worker_reserves_its_own_gpu_in_the_gpu_profile() -> None:
    gpu_workers = sorted(name for name in AVATUNE_SERVICES if gpu_reservations(name))
    assert len(gpu_workers) >= 2, "one worker service per GPU, at least two"
    ids = []
    for name in gpu_workers:
        (device,) = gpu_reservations(name)
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"], name
        assert "count" not in device, f"{name}: `count` gives every replica GPU 0"
        (device_id,) = device["device_ids"]
        assert name == f"worker-gpu{device_id}", f"{name} reserves GPU {device_id}"
        ids.append(device_id)
        assert SERVICES[name]["profiles"] == ["gpu"], f"{name} must wait for --profile gpu"
        params = worker_params(name)
        assert params["server"] == "http://api:8000"
        # the container sees its one GPU as cuda:0; an index past it would fail to start
        assert params["device"] in ("cuda", "cuda:0"), name
        assert params["devices"] is None and params["max_batch"] is None, "CUDA's default"
    assert len(set(ids)) == len(ids), f"two services reserve the same GPU: {ids}"


def test_the_default_worker_runs_on_the_cpu_without_a_profile() -> None:
    # `docker compose up` on a machine without GPUs starts the API and this worker
    worker = SERVICES["worker"]
    assert "profiles" not in worker and not gpu_reservations("worker")
    assert worker_params("worker")["device"] == "cpu"
    for name in AVATUNE_SERVICES:
        if name != "api" and not gpu_reservations(name):
            assert worker_params(name)["device"] == "cpu", f"{name} has no GPU reserved"


def test_every_host_the_services_use_is_allowed_by_the_api() -> None:
    api = SERVICES["api"]
    command, rest = resolve([interpolate(str(arg)) for arg in api["command"]])
    bind = command.make_context(command.name, rest).params["host"]
    extra = interpolate(str(api["environment"].get("AVATUNE_ALLOWED_HOSTS", "")))
    # parsed as the API parses its environment, checked by the API's own allowlist
    allowed = allowed_hosts(bind, Settings(allowed_hosts=extra).allowed_hosts)
    used: set[str] = set()
    for name in AVATUNE_SERVICES:
        service = SERVICES[name]
        texts = [str(arg) for arg in service["command"]]
        texts += [str(arg) for arg in service.get("healthcheck", {}).get("test", [])]
        for text in texts:
            used |= {urlsplit(url).netloc for url in re.findall(r"https?://[^\s'\"]+", text)}
    assert "api:8000" in used and "127.0.0.1:8000" in used, used
    for host in used:
        assert host_allowed(host, allowed), (
            f"the API would refuse Host {host}: see AVATUNE_ALLOWED_HOSTS"
        )
    assert allowed is not None, "the API should not allow every host name"


def test_every_avatune_variable_is_read_by_the_settings_or_the_cli() -> None:
    known = known_avatune_variables()
    for name in AVATUNE_SERVICES:
        for variable in SERVICES[name].get("environment", {}):
            if variable.startswith("AVATUNE_"):
                assert variable in known, f"{name} sets {variable}, which nothing reads"
    unknown = {v for v in env_example() if v.startswith("AVATUNE_")} - known
    assert not unknown, f".env.example names variables nothing reads: {sorted(unknown)}"


def test_every_interpolated_variable_is_in_env_example() -> None:
    used = {match.group(1) for match in INTERPOLATION.finditer(COMPOSE_FILE.read_text())}
    assert {"AVATUNE_TOKEN", "POSTGRES_PASSWORD"} <= used
    missing = used - env_example()
    assert not missing, f"missing from .env.example: {sorted(missing)}"


def test_the_api_healthcheck_hits_a_real_route(tmp_path: Path) -> None:
    check = " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert "curl" not in check and "urllib" in check, "the slim image has python, not curl"
    found = re.search(r"http://127\.0\.0\.1:8000(/[\w/-]*)", check)
    assert found is not None, check
    path = found.group(1)
    url = f"sqlite:///{tmp_path / 'health.db'}"
    app = create_app(Settings(database_url=url, allowed_hosts=["testserver"]))
    assert path in app.openapi()["paths"], f"{path} is not a route of the API"
    with TestClient(app) as client:
        assert client.get(path).status_code == 200


def test_the_dockerfile_installs_the_pinned_torch_then_the_project_with_constraints() -> None:
    pin = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pin is not None, "constraints.txt pins torch"
    installs = [line for line in DOCKERFILE.splitlines() if "pip install" in line]
    assert len(installs) >= 2 and all("-c constraints.txt" in line for line in installs)
    assert re.search(rf"\btorch=={re.escape(pin.group(1))}$", installs[0]), installs[0]
    assert re.search(r"\s(-e )?\.(\[\w+\])?( |$)", installs[1]), installs[1]
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", DOCKERFILE, re.M)
    assert re.search(r'^ENTRYPOINT \["avatune"\]$', DOCKERFILE, re.M)
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    for source in (
        "constraints.txt",
        "pyproject.toml",
        "alembic.ini",
        "alembic",
        "optim",
        "studies",
        "workers",
        "service",
    ):
        assert re.search(rf"^COPY .*\b{re.escape(source)}\b", DOCKERFILE, re.M), source


def test_the_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for entry in (".venv", ".git", ".env", "out", ".avatune", "**/*.db", "**/__pycache__"):
        assert entry in ignored, f".dockerignore lacks {entry}"
    for needed in ("optim", "studies", "workers", "service", "alembic", "constraints.txt"):
        assert needed not in ignored


def _docker_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return version.returncode == 0


@pytest.mark.skipif(
    not _docker_compose(),
    reason="the docker CLI with its compose plugin is not installed; "
    "the file is still checked structurally by the tests above",
)
def test_docker_compose_config_validates(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("AVATUNE_TOKEN=token\nPOSTGRES_PASSWORD=password\n")
    result = subprocess.run(
        [
            "docker",
            "compose",
            "--env-file",
            str(env),
            "--file",
            str(COMPOSE_FILE),
            "--profile",
            "gpu",
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
