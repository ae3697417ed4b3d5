"""The server's commands and the worker command, through typer."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from sqlalchemy import inspect
from typer.testing import CliRunner

from service.cli import register
from service.db import make_engine
from tests.service.helpers import ThreadServer, app_for, grid_study
from workers.cli import register as register_workers


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    register(root)
    register_workers(root)
    return root


def test_commands_are_registered(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["--help"])
    for command in ("serve", "db", "study", "experiment", "worker"):
        assert command in result.output


def test_serve_refuses_a_public_host_without_a_token(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AVATUNE_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--db", "sqlite:///x.db"])
    assert result.exit_code == 2 and "without a token" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--spec", "nope"], "no built-in spec 'nope'; choose one of"),
        (["--spec", "specs/missing.yaml"], "no spec file specs/missing.yaml; check the path"),
        (["--spec", "quick-mnist1d", "--quick"], "give --quick or --spec, not both"),
        (["--spec", "{study}"], "is a study spec; the demo runs experiments"),
        (["--spec", "{broken}"], "cannot read"),
    ],
)
def test_demo_refuses_a_spec_it_cannot_run(
    app: typer.Typer, tmp_path: Path, args: list[str], message: str
) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(grid_study("one-study")))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed")
    args = [a.format(study=study, broken=broken) for a in args]
    result = CliRunner().invoke(app, ["demo", *args, "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "d").exists(), "nothing starts before the spec is accepted"


def test_db_upgrade_creates_the_schema(app: typer.Typer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(app, ["db", "upgrade", "--db", url])
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"studies", "trials", "workers", "experiments", "alembic_version"} <= tables


def test_study_create_list_show(app: typer.Typer, sqlite_url: str, tmp_path: Path) -> None:
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(grid_study("from-yaml", n_alpha=2, n_eps=2)))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(grid_study("bad", optimizer="torch optim:Adam")))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump(grid_study("unknown", optimizer="adamm")))
    runner = CliRunner()
    with ThreadServer(app_for(sqlite_url, token="tok-123")) as server:
        common = ["--server", server.url, "--token", "tok-123"]
        created = runner.invoke(app, ["study", "create", "-f", str(spec), *common])
        assert created.exit_code == 0, created.output
        assert "study 1 (from-yaml)" in created.output
        refused = runner.invoke(app, ["study", "create", "-f", str(spec), "--server", server.url])
        assert refused.exit_code == 1 and "401" in refused.output
        invalid = runner.invoke(app, ["study", "create", "-f", str(bad), *common])
        assert invalid.exit_code == 2 and "malformed import path" in invalid.output
        # whether a plain name names something installed is the server's to say
        refused_name = runner.invoke(app, ["study", "create", "-f", str(unknown), *common])
        assert refused_name.exit_code == 1 and "422" in refused_name.output
        assert "unknown optimizer 'adamm'; did you mean 'adam'?" in refused_name.output
        listed = runner.invoke(app, ["study", "list", *common])
        assert listed.exit_code == 0 and "from-yaml" in listed.output
        shown = runner.invoke(app, ["study", "show", "1", *common])
        assert shown.exit_code == 0 and "queued 4" in shown.output
        missing = runner.invoke(app, ["study", "show", "9", *common])
        assert missing.exit_code == 1 and "404" in missing.output


def test_experiment_create_from_a_builtin_spec(app: typer.Typer, sqlite_url: str) -> None:
    from studies.specs import SPECS_DIR

    runner = CliRunner()
    with ThreadServer(app_for(sqlite_url)) as server:
        path = SPECS_DIR / "quick-mnist1d.yaml"
        created = runner.invoke(app, ["study", "create", "-f", str(path), "--server", server.url])
        assert created.exit_code == 0, created.output
        assert "2 grid studies" in created.output
        shown = runner.invoke(app, ["experiment", "show", "1", "--server", server.url])
        assert shown.exit_code == 0 and shown.output.count("0/121") == 2


def test_unreachable_server(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["study", "list", "--server", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "cannot reach" in result.output
