"""Server settings: environment variables ``AVATUNE_*``; CLI flags override them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///avatune.db"


class Settings(BaseSettings):
    """Everything the server reads from its environment."""

    # hide_input_in_errors: a refused value (a database URL, a token) is never echoed
    model_config = SettingsConfigDict(
        env_prefix="AVATUNE_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: a SQLite file (default, in the working directory) "
        "or postgresql+psycopg://user@host/db.",
    )
    token: SecretStr | None = Field(
        default=None, description="Bearer token required by mutating routes and workers."
    )
    protect_reads: bool = Field(
        default=False,
        description="Require the token for reads too: every API GET, the dashboard (after "
        "/login) and /metrics; /healthz, /login, /static and the API docs stay open.",
    )

    @field_validator("protect_reads")
    @classmethod
    def _protect_reads(cls, value: bool, info: ValidationInfo) -> bool:
        """Protected reads need a token to protect them with."""
        token = info.data.get("token")
        if value and (token is None or not token.get_secret_value()):
            raise ValueError("needs a token: set AVATUNE_TOKEN too (or leave reads open)")
        return value

    host: str = "127.0.0.1"
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers besides localhost, its --host and this "
        "machine's name (a comma list; * allows any), against DNS rebinding.",
    )
    port: int = Field(default=8000, ge=0, le=65535)
    lease_seconds: float = Field(default=120.0, gt=0, le=86_400)
    max_attempts: int = Field(default=3, ge=1, le=100)
    max_lease_trials: int = Field(default=1024, ge=1, le=4096)
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    idle_retry_seconds: float = Field(default=2.0, gt=0, le=600)
    data_dir: Path = Field(default=Path(".avatune"), description="Report figures and files.")
    pool_size: int = Field(default=20, ge=1, le=200, description="PostgreSQL connections.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Level of the avatune.* and uvicorn loggers."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text lines, or one JSON object per line for log shippers."
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        """Accept INFO, JSON etc. from the environment."""
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """A URL the engine can use (a bare file path is refused with the sqlite:/// form)."""
        from service.db import DatabaseURLError, check_database_url
        from service.redact import redact

        try:
            check_database_url(value)
        except DatabaseURLError as error:
            raise ValueError(redact(str(error))) from None
        return value.strip()

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _allowed_hosts(cls, value: object) -> object:
        """A comma list from the environment: `api, gpu-box.lan`."""
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @property
    def token_value(self) -> str | None:
        """The token in clear, or None when auth is off."""
        if self.token is None or not self.token.get_secret_value():
            return None
        return self.token.get_secret_value()

    @property
    def heartbeat_seconds(self) -> float:
        """How often workers should heartbeat: a third of the lease."""
        return self.lease_seconds / 3.0


#: The CLI flag of each setting `avatune serve` takes, for error messages.
FLAGS = {
    "database_url": "--db",
    "host": "--host",
    "port": "--port",
    "lease_seconds": "--lease-seconds",
    "log_level": "--log-level",
    "log_format": "--log-format",
}


class SettingsError(ValueError):
    """Settings that cannot work; the message names each one and what to change."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment with `overrides` (CLI flags); SettingsError when invalid."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        lines = []
        for item in error.errors():
            name = ".".join(str(part) for part in item["loc"])
            where = FLAGS.get(name, name) if name in overrides else f"AVATUNE_{name.upper()}"
            text = str(item["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {text}")
        raise SettingsError("\n".join(lines)) from None
