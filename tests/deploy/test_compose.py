"""docker-compose.yml, Dockerfile and .env.example agree with the real CLI, settings and routes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from studies.cli import build_app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
AVATUNE_IMAGE = [name for name, s in SERVICES.items() if name != "db"]


def _cli() -> Any:
    """The `avatune` command as (typer's) click objects."""
    return typer.main.get_command(build_app())


def _subcommands(command: Any) -> dict[str, Any]:
    if not hasattr(command, "list_commands"):
        return {}
    ctx = command.context_class(command)
    return {name: command.get_command(ctx, name) for name in command.list_commands(ctx)}


def _resolve(command: Any, args: list[str]) -> tuple[Any, list[str]]:
    """The (sub)command that `avatune ARGS` runs, and the arguments left for it."""
    while _subcommands(command) and args and not args[0].startswith("-"):
        sub = _subcommands(command).get(args[0])
        assert sub is not None, f"`avatune` has no command {args[0]!r} (used in compose)"
        command, args = sub, args[1:]
    return command, args


def _envvars(command: Any) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        names.update([envvar] if isinstance(envvar, str) else envvar or [])
    for sub in _subcommands(command).values():
        names |= _envvars(sub)
    return names


def test_services_and_their_wiring() -> None:
    assert {"db", "api", "worker"} <= set(SERVICES)
    db, api, worker = SERVICES["db"], SERVICES["api"], SERVICES["worker"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in db["volumes"]) and "pgdata" in COMPOSE["volumes"]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert worker["depends_on"]["api"]["condition"] == "service_healthy"
    assert api["environment"]["AVATUNE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@db:" in api["environment"]["AVATUNE_DATABASE_URL"]
    assert worker["environment"]["AVATUNE_SERVER"] == "http://api:8000"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "container_name" not in worker and "ports" not in worker, "must scale"


def test_every_command_and_option_exists_in_the_cli() -> None:
    cli = _cli()
    for name in AVATUNE_IMAGE:
        args = [re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", str(a)) for a in SERVICES[name]["command"]]
        command, rest = _resolve(cli, args)
        options = {opt for p in command.params for opt in p.opts + p.secondary_opts}
        for arg in rest:
            if arg.startswith("--"):
                assert arg in options, f"{name}: `{command.name}` has no option {arg}"
        ctx = command.make_context(command.name, rest, resilient_parsing=False)
        assert ctx.params  # parsed: types and ranges accepted


def test_every_environment_variable_is_read_by_the_settings_or_the_cli() -> None:
    known = {f"AVATUNE_{field.upper()}" for field in Settings.model_fields} | _envvars(_cli())
    for name in AVATUNE_IMAGE:
        for variable in SERVICES[name].get("environment", {}):
            assert variable in known, f"{name} sets {variable}, which nothing reads"


def test_every_interpolated_variable_is_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    example = {
        line.lstrip("# ").split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line
    }
    assert used and used <= example, f"missing from .env.example: {sorted(used - example)}"
    assert {"AVATUNE_TOKEN", "POSTGRES_PASSWORD"} <= used


def test_the_api_healthcheck_hits_a_real_route(tmp_path: Path) -> None:
    check = " ".join(SERVICES["api"]["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:8000(/\w+)", check)
    assert path is not None, check
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    with TestClient(app) as client:
        assert client.get(path.group(1)).status_code == 200


def test_dockerfile_installs_the_pinned_torch_with_the_constraints() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pin = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pin is not None
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and all("-c constraints.txt" in line for line in installs)
    assert all(f"torch=={pin.group(1)}" in line for line in installs if "torch" in line)
    assert re.search(r'^ENTRYPOINT \["avatune"\]', dockerfile, re.M)
    for folder in ("optim", "studies", "workers", "service", "alembic"):
        assert re.search(rf"^COPY {folder} ", dockerfile, re.M), f"the image lacks {folder}/"


def _has_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_compose(),
                    reason="docker compose is not installed (optional: it validates the file too)")
def test_docker_compose_config_validates(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("AVATUNE_TOKEN=t\nPOSTGRES_PASSWORD=p\n")
    subprocess.run(["docker", "compose", "--env-file", str(env), "-f",
                    str(ROOT / "docker-compose.yml"), "config", "-q"], check=True)
