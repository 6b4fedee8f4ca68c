"""Configuration from the environment (and an optional .env file).

Names are part of the contract (README, Configuration). A bad value
stops start-up with a message naming the variable.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from seatflow.domain.planning import AdjacencyMode, EngineConfig


class ConfigError(RuntimeError):
    """A configuration value is invalid; the message names the variable."""


POSTGRES_SCHEMES = ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql://",
                    "postgres://")


def database_url_problem(url: str) -> str | None:
    """Why `url` is not a usable PostgreSQL URL, or None. Never quotes the password."""
    if not url.startswith(POSTGRES_SCHEMES):
        return "must be a PostgreSQL URL, e.g. postgresql://user@localhost:5432/seatflow"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url("postgresql://" + url.split("://", 1)[1])
    except (ArgumentError, ValueError) as exc:
        from seatflow.redact import redact_secrets, url_password

        detail = redact_secrets(str(exc), (url_password(url),))
        return f"is not a valid URL ({detail}), e.g. postgresql://user@localhost:5432/seatflow"
    return None


def check_database_url(url: str) -> str:
    """`url` when usable; else ConfigError naming DATABASE_URL, password masked."""
    problem = database_url_problem(url)
    if problem is not None:
        from seatflow.redact import mask_url

        raise ConfigError(f"invalid configuration: DATABASE_URL={mask_url(url)!r}: {problem}")
    return url


def project_root() -> Path:
    """The directory holding var/: SEATFLOW_HOME, else the current directory."""
    return Path(os.environ.get("SEATFLOW_HOME", os.getcwd())).resolve()


class Settings(BaseSettings):
    # extra="ignore": a variable seatflow does not read (another program's, or a
    # removed setting such as SEATFLOW_REPACK_DEEP_MS) changes nothing
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_prefix="")

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    temporal_address: str = Field(default="localhost:7233", alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    task_queue: str = Field(default="seatflow", alias="SEATFLOW_TASK_QUEUE")
    shadow_task_queue: str = Field(default="seatflow-shadow", alias="SEATFLOW_SHADOW_TASK_QUEUE")
    retry_base_seconds: float = Field(default=1.0, ge=0, alias="SEATFLOW_RETRY_BASE_SECONDS")
    retry_cap_seconds: float = Field(default=30.0, ge=0, alias="SEATFLOW_RETRY_CAP_SECONDS")
    max_attempts: int = Field(default=5, ge=1, le=50, alias="SEATFLOW_MAX_ATTEMPTS")
    max_tables: int = Field(default=3, ge=1, le=5, alias="SEATFLOW_MAX_TABLES")
    max_overage: int = Field(default=4, ge=0, alias="SEATFLOW_MAX_OVERAGE")
    adjacency_mode: str = Field(default="connected", alias="SEATFLOW_ADJACENCY_MODE")
    mailbox_dir: str | None = Field(default=None, alias="SEATFLOW_MAILBOX_DIR")
    mail_transport: str = Field(default="file", alias="SEATFLOW_MAIL_TRANSPORT")
    smtp_host: str = Field(default="localhost", alias="SEATFLOW_SMTP_HOST")
    smtp_port: int = Field(default=25, alias="SEATFLOW_SMTP_PORT")
    mail_from: str = Field(default="bookings@seatflow.local", alias="SEATFLOW_MAIL_FROM")
    mail_max_attempts: int = Field(default=20, ge=1, le=1000, alias="SEATFLOW_MAIL_MAX_ATTEMPTS")
    metrics_address: str = Field(default="127.0.0.1:9464", alias="SEATFLOW_METRICS_ADDRESS")
    breaker_threshold: int = Field(default=5, ge=1, alias="SEATFLOW_BREAKER_THRESHOLD")
    breaker_cooldown_seconds: float = Field(
        default=15.0, ge=0, alias="SEATFLOW_BREAKER_COOLDOWN_SECONDS"
    )
    log_format: str = Field(default="json", alias="SEATFLOW_LOG_FORMAT")
    manual_review_timeout_seconds: float | None = Field(
        default=None, gt=0, alias="SEATFLOW_MANUAL_REVIEW_TIMEOUT_SECONDS"
    )
    legacy_delays_seconds: str = Field(default="5,15,45", alias="SEATFLOW_LEGACY_DELAYS_SECONDS")
    # re-packing never moves a booking that starts within this many minutes
    repack_freeze_minutes: int = Field(
        default=60, ge=0, le=24 * 60, alias="SEATFLOW_REPACK_FREEZE_MINUTES"
    )
    # re-packing: move bookings that have not started to seat a new one
    # (docs/engine.md); false for a venue where an assigned table never changes
    repack: bool = Field(default=True, alias="SEATFLOW_REPACK")
    # at most this many bookings moved (each guest gets a table-changed email)
    # to seat one new booking: 1..10000, or "unlimited" (docs/engine.md, "Moves
    # a guest accepts"). 0 is refused: it used to mean unlimited.
    repack_max_moves: int | Literal["unlimited"] = Field(
        default=2, alias="SEATFLOW_REPACK_MAX_MOVES"
    )
    # without re-packing, plans of three or more tables wait until the booking
    # starts within this many minutes (docs/engine.md, "Three tables"); 525600
    # (a year) allows them at any time. With re-packing nothing waits.
    wide_plan_lead_minutes: int = Field(
        default=120, ge=0, le=525600, alias="SEATFLOW_WIDE_PLAN_LEAD_MINUTES"
    )
    # availability's re-packing stage: steps in total per evaluation (the same
    # answer on any machine; docs/engine.md, "Availability"). More decides more
    # start times at the edge of a full stretch, at about 8 us of CPU a step.
    availability_repack_steps: int = Field(
        default=EngineConfig.availability_repack_steps, ge=0, le=10_000_000,
        alias="SEATFLOW_AVAILABILITY_REPACK_STEPS",
    )
    # The HTTP API: bearer tokens as JSON (parsed by seatflow.api.auth, which
    # never echoes a token in an error) and the address `seatflow api` binds.
    api_tokens: str = Field(default="", alias="SEATFLOW_API_TOKENS", repr=False)
    api_address: str = Field(default="127.0.0.1:8000", alias="SEATFLOW_API_ADDRESS")
    # Bookings (API and CLI) start at most this many days ahead; availability
    # reaches as far (422 / exit 2 `beyond_horizon` past it).
    booking_horizon_days: int = Field(
        default=365, ge=1, le=3650, alias="SEATFLOW_BOOKING_HORIZON_DAYS"
    )

    # Holds (slot locks, POST .../holds): how long one lasts, and how many
    # unbooked holds one token may keep at a restaurant at once.
    hold_minutes: float = Field(default=5.0, gt=0, le=60, alias="SEATFLOW_HOLD_MINUTES")
    hold_max_per_token: int = Field(default=20, ge=1, le=10000,
                                    alias="SEATFLOW_HOLD_MAX_PER_TOKEN")
    # Fair use of the API: every token's request rate unless its entry in
    # SEATFLOW_API_TOKENS names its own `rate_limit` (the `limits` library's
    # notation, e.g. "20/second;600/minute"; 429 with Retry-After past it), and
    # the pool of processes CPU-bound work runs in (service/cpu.py): its
    # workers (0: on the event loop), and how long a request may wait for one
    # (503 busy past it).
    api_rate_limit: str = Field(default="10/second;300/minute", alias="SEATFLOW_API_RATE_LIMIT")
    api_cpu_workers: int = Field(default=1, ge=0, le=64, alias="SEATFLOW_API_CPU_WORKERS")
    api_cpu_wait_ms: float = Field(default=1000.0, gt=0, le=60000,
                                   alias="SEATFLOW_API_CPU_WAIT_MS")

    @field_validator("api_rate_limit")
    @classmethod
    def _rate(cls, v: str) -> str:
        from limits import parse_many

        try:
            parse_many(v)
        except ValueError:
            raise ValueError("must be rate limits such as 20/second;600/minute") from None
        return v

    @field_validator("legacy_delays_seconds")
    @classmethod
    def _delays(cls, v: str) -> str:
        try:
            values = [float(x) for x in v.split(",") if x.strip()]
        except ValueError:
            raise ValueError("must be a comma list of seconds, e.g. 5,15,45") from None
        if any(x < 0 for x in values):
            raise ValueError("delays must be >= 0")
        return v

    @field_validator("repack_max_moves", mode="before")
    @classmethod
    def _max_moves(cls, v: object) -> int | str:
        text = str(v).strip().lower()
        if text == "unlimited":
            return text
        try:
            moves = int(text)
        except ValueError:
            moves = 0
        if not 1 <= moves <= 10_000:
            raise ValueError(
                "must be a number of moves from 1 to 10000, or unlimited (0 no longer "
                "means unlimited; SEATFLOW_REPACK=false turns re-packing off)"
            )
        return moves

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str | None) -> str | None:
        if v is not None and v != "":
            problem = database_url_problem(v)
            if problem is not None:
                raise ValueError(problem)
        return v or None

    @property
    def legacy_delays(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self.legacy_delays_seconds.split(",") if x.strip())

    @field_validator("adjacency_mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in ("connected", "pairwise", "neighbors"):
            raise ValueError("must be one of connected, pairwise, neighbors")
        return v

    @field_validator("mail_transport")
    @classmethod
    def _transport(cls, v: str) -> str:
        if v not in ("file", "smtp"):
            raise ValueError("must be file or smtp")
        return v

    def mailbox_path(self) -> Path:
        return Path(self.mailbox_dir) if self.mailbox_dir else project_root() / "var" / "mailbox"

    def engine_config(self) -> EngineConfig:
        """The plan rules every caller of the engine uses (the attempt, the
        shadow search, availability, the API and the CLI): one place, so that
        availability never offers what the pipeline would not seat."""
        return EngineConfig(
            max_tables=self.max_tables,
            max_overage=self.max_overage,
            adjacency_mode=AdjacencyMode(self.adjacency_mode),
            repack=self.repack,
            repack_freeze_minutes=self.repack_freeze_minutes,
            repack_max_moves=(
                None if self.repack_max_moves == "unlimited" else self.repack_max_moves
            ),
            wide_plan_lead_minutes=self.wide_plan_lead_minutes,
            availability_repack_steps=self.availability_repack_steps,
        )


class Flags(BaseSettings):
    """The V3 rollout flags (docs/deploy.md), read fresh on every decision."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    v3: bool = Field(default=False, alias="FEATURE_ASSIGNMENT_PIPELINE_V3")
    shadow: bool = Field(default=False, alias="FEATURE_ASSIGNMENT_PIPELINE_V3_SHADOW")
    max_parallel: int = Field(
        default=3, ge=1, le=20, alias="FEATURE_ASSIGNMENT_PIPELINE_V3_MAX_PARALLEL"
    )
    rollout_percent: int = Field(
        default=100, ge=0, le=100, alias="FEATURE_ASSIGNMENT_PIPELINE_V3_ROLLOUT_PERCENT"
    )
    restaurants: str = Field(default="", alias="FEATURE_ASSIGNMENT_PIPELINE_V3_RESTAURANTS")

    @property
    def restaurant_allowlist(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.restaurants.split(",") if r.strip())

    def v3_enabled_for(self, restaurant_id: str) -> bool:
        if not self.v3:
            return False
        allow = self.restaurant_allowlist
        if allow:
            return restaurant_id in allow
        return rollout_bucket(restaurant_id) < self.rollout_percent


def rollout_bucket(restaurant_id: str) -> int:
    """A stable bucket 0..99 per restaurant: a restaurant in at 10% stays in at 50%."""
    digest = hashlib.sha256(restaurant_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _friendly(exc: ValidationError) -> ConfigError:
    from seatflow.redact import mask_url, redact_secrets

    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        value = err.get("input")
        shown = repr(mask_url(value)) if isinstance(value, str) else repr(value)
        problems.append(redact_secrets(f"{loc}={shown}: {err.get('msg')}"))
    return ConfigError("invalid configuration: " + "; ".join(problems))


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _friendly(exc) from None


def load_flags(**overrides: Any) -> Flags:
    try:
        return Flags(**overrides)
    except ValidationError as exc:
        raise _friendly(exc) from None


_FLAG_VARIABLES = tuple(str(f.alias) for f in Flags.model_fields.values())
_flags_read: tuple[Any, Flags] | None = None


def current_flags() -> Flags:
    """The flags in force now, as `load_flags()` reads them, parsed again only
    when one of their variables or the .env file changed: each decision still
    sees a flag change at once, without paying for pydantic-settings' parse
    of the environment and the .env file on every booking (issue 27)."""
    global _flags_read
    try:
        dotenv: bytes | None = Path(".env").read_bytes()  # a small file: cheaper than a parse
    except OSError:
        dotenv = None
    key = (os.getcwd(), dotenv, tuple(os.environ.get(v) for v in _FLAG_VARIABLES))
    if _flags_read is None or _flags_read[0] != key:
        _flags_read = (key, load_flags())
    return _flags_read[1]


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()
