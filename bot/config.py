"""Settings for the bot, the console and the operator CLI, read from the environment.

``.env`` (in the working directory) is loaded with python-dotenv but never overrides a
variable that is already set in the real environment. Every value is validated once, at
start: a bad one raises :class:`ConfigError`, a one-line message that names the variable.
The token is never part of any message, ``repr`` or log line.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from bot.engine.learners import (
    DEFAULT_LEARNER,
    LEARNERS,
    LearnerClass,
    LearnerParams,
    learner_class,
    make_learner,
)
from bot.engine.qlearning import DEFAULT_GENRES, validate_genres
from bot.errors import QTuneError
from storage.base import StorageError
from storage.factory import check_target, is_postgres_url
from storage.sqlite import SYNCHRONOUS as SQLITE_SYNCHRONOUS

if TYPE_CHECKING:
    from bot.service import QTuneService
    from storage.base import Storage

DEFAULT_DB = "data/qtune.sqlite3"
DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"
EPISODES_HARD_CAP = 100_000
DEFAULT_COOLDOWN = 3.0
DEFAULT_LOOP_LAG_INTERVAL = 0.05
DEFAULT_FEEDBACK_RETRY = 30.0  # s a reaction is retried while the database is away
DEFAULT_RECONCILE_INTERVAL = 60.0  # s between passes that apply deferred reactions

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PARAM_VARIABLES = {
    "alpha": "QTUNE_ALPHA",
    "gamma": "QTUNE_GAMMA",
    "epsilon": "QTUNE_EPSILON",
    "epsilon_decay": "QTUNE_EPSILON_DECAY",
    "epsilon_min": "QTUNE_EPSILON_MIN",
}
"""The learning settings read from the environment, by parameter field. A learner reads
those its parameter class has; the others are reported as unused, never applied."""

log = logging.getLogger(__name__)


class ConfigError(QTuneError):
    """A missing or invalid setting. The message names the variable, never the token."""


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Build it with :meth:`from_env`; the defaults are the seed's."""

    token: str | None = field(default=None, repr=False, compare=False)
    db_path: Path = Path(DEFAULT_DB)
    db_url: str | None = field(default=None, repr=False)
    """A ``postgresql://`` QTUNE_DB (may hold a password, so not in ``repr``)."""
    dev_guild: int | None = None
    genres: tuple[str, ...] = DEFAULT_GENRES
    params: LearnerParams = None  # type: ignore[assignment]  # None: the learner's defaults
    learner: str = DEFAULT_LEARNER
    like_reward: float = 10.0
    dislike_reward: float = -5.0
    community: bool = True
    """QTUNE_COMMUNITY: a member's first table in a guild starts from the guild's taste."""
    log_level: str = "INFO"
    cooldown: float = DEFAULT_COOLDOWN
    max_episodes: int = EPISODES_HARD_CAP
    guild_ready_timeout: float = 2.0
    loop_lag_interval: float | None = None
    seed: int | None = None
    """QTUNE_SEED: seeds the bot's random choices, so a scripted session (the docs' pictures,
    a bug report) replays exactly; unset in production."""
    api_base: str = DEFAULT_API_BASE
    gateway_url: str = DEFAULT_GATEWAY_URL
    feedback_retry: float = DEFAULT_FEEDBACK_RETRY
    reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL
    shard_count: int | None = None
    """QTUNE_SHARD_COUNT: the cluster's total shards; None runs today's unsharded bot."""
    shard_ids: tuple[int, ...] | None = None
    """QTUNE_SHARD_IDS: the shards this process runs (None: all of them)."""
    sqlite_synchronous: str = "FULL"
    """QTUNE_SQLITE_SYNCHRONOUS: FULL fsyncs every commit (survives power loss); NORMAL
    survives a killed process but may lose the last commits on power loss, for less CPU."""

    def __post_init__(self) -> None:
        if self.params is None:
            object.__setattr__(self, "params", learner_class(self.learner).params_type())

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: str | os.PathLike = ".env"
    ) -> Settings:
        """Read and validate every setting.

        With ``environ=None`` the process environment is used, completed by ``env_file``
        (values already in the environment win). A given mapping is used as-is.
        """
        env = _with_dotenv(os.environ, Path(env_file)) if environ is None else dict(environ)
        token = (env.get("DISCORD_TOKEN") or "").strip() or None
        try:
            return cls._parse(env, token)
        except ConfigError as exc:
            raise ConfigError(redact(str(exc), token)) from None

    @classmethod
    def _parse(cls, env: Mapping[str, str], token: str | None) -> Settings:
        if token is not None and any(c.isspace() for c in token):
            raise ConfigError("DISCORD_TOKEN contains whitespace; paste the token exactly")
        learner = _text(env, "QTUNE_LEARNER", DEFAULT_LEARNER).lower()
        try:
            kind = learner_class(learner)
        except ValueError:
            known = ", ".join(sorted(LEARNERS))
            raise ConfigError(
                f"QTUNE_LEARNER: unknown learner {learner!r}; choose one of {known}"
            ) from None
        params = _params(env, kind)
        genres_raw = env.get("QTUNE_GENRES", "")
        genres = DEFAULT_GENRES
        if genres_raw.strip():
            try:
                genres = validate_genres(genres_raw.split(","))
            except ValueError as exc:
                raise ConfigError(f"QTUNE_GENRES: {exc}") from None
        db = _text(env, "QTUNE_DB", DEFAULT_DB)
        try:
            check_target(db)
        except StorageError as exc:
            raise ConfigError(f"QTUNE_DB: {exc}") from None
        db_url = db if is_postgres_url(db) else None
        max_episodes = _int(env, "QTUNE_MAX_EPISODES", EPISODES_HARD_CAP)
        if not 1 <= max_episodes <= EPISODES_HARD_CAP:
            raise ConfigError(
                f"QTUNE_MAX_EPISODES must be between 1 and {EPISODES_HARD_CAP:,}, "
                f"got {max_episodes}"
            )
        like = _float(env, "QTUNE_REWARD_LIKE", 10.0)
        dislike = _float(env, "QTUNE_REWARD_DISLIKE", -5.0)
        if not like > dislike:
            # Otherwise 👍 would teach the bot to avoid a genre.
            raise ConfigError(
                f"QTUNE_REWARD_LIKE ({like:g}) must be greater than QTUNE_REWARD_DISLIKE "
                f"({dislike:g})"
            )
        return cls(
            token=token,
            db_path=Path(DEFAULT_DB if db_url else db).expanduser(),
            db_url=db_url,
            dev_guild=_snowflake(env, "QTUNE_DEV_GUILD"),
            genres=genres,
            params=params,
            learner=learner,
            like_reward=like,
            dislike_reward=dislike,
            community=_on_off(env, "QTUNE_COMMUNITY", True),
            log_level=_log_level(env),
            cooldown=_float(env, "QTUNE_COOLDOWN", DEFAULT_COOLDOWN, lo=0.0, hi=3600.0),
            max_episodes=max_episodes,
            guild_ready_timeout=_float(env, "QTUNE_GUILD_READY_TIMEOUT", 2.0, lo=0.0, hi=60.0),
            loop_lag_interval=_loop_lag(env),
            seed=_seed(env),
            api_base=_url(env, "DISCORD_API_BASE", DEFAULT_API_BASE, ("http", "https")),
            gateway_url=_url(env, "DISCORD_GATEWAY_URL", DEFAULT_GATEWAY_URL, ("ws", "wss")),
            feedback_retry=_float(
                env, "QTUNE_FEEDBACK_RETRY", DEFAULT_FEEDBACK_RETRY, lo=0.0, hi=3600.0
            ),
            reconcile_interval=_float(
                env, "QTUNE_RECONCILE_INTERVAL", DEFAULT_RECONCILE_INTERVAL, lo=0.1, hi=86400.0
            ),
            sqlite_synchronous=_synchronous(env),
            **_shards(env),
        )

    def require_token(self) -> str:
        """The token, or a ConfigError saying it is missing (only ``run`` needs it)."""
        if not self.token:
            raise ConfigError(
                "DISCORD_TOKEN is not set; put it in the environment or in .env (see .env.example)"
            )
        return self.token

    @property
    def sharded(self) -> bool:
        return self.shard_count is not None

    def owns_guild(self, guild_id: int | None) -> bool:
        """Whether this process's shards receive ``guild_id``'s events (DMs go to shard 0)."""
        if self.shard_count is None or self.shard_ids is None:
            return True
        shard = 0 if guild_id is None else (guild_id >> 22) % self.shard_count
        return shard in self.shard_ids

    @property
    def syncs_commands(self) -> bool:
        """Only the process that runs shard 0 syncs app commands (one sync per cluster)."""
        return self.shard_ids is None or 0 in self.shard_ids

    @property
    def database(self) -> str:
        """What QTUNE_DB names: a SQLite file path or a PostgreSQL URL."""
        return self.db_url or str(self.db_path)

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced (no-op for a short/absent one)."""
    if secret and len(secret) >= 4:
        return text.replace(secret, "[redacted]")
    return text


def _with_dotenv(environ: Mapping[str, str], path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    if path.is_file():
        try:
            values = dotenv_values(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc.__class__.__name__}") from None
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(environ)  # the real environment always wins
    return merged


def _on_off(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value in ("on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, got {value[:20]!r}")


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or "").strip()
    return value or default


def _float(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    lo: float = -math.inf,
    hi: float = math.inf,
) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip().replace("_", "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _snowflake(env: Mapping[str, str], name: str) -> int | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**64:
        raise ConfigError(f"{name} must be a Discord id (a positive whole number), got {raw!r}")
    return int(raw)


def _params(env: Mapping[str, str], cls: LearnerClass) -> LearnerParams:
    """The learner's own parameters from the ``PARAM_VARIABLES`` it has.

    A set variable that the learner does not use is logged at WARNING and ignored: it
    would otherwise look like a setting that takes effect (``QTUNE_ALPHA`` with ``dyna``).
    """
    fields = {f.name for f in dataclasses.fields(cls.params_type)}
    defaults = cls.params_type()
    values: dict[str, float] = {}
    for name, variable in PARAM_VARIABLES.items():
        if name in fields:
            values[name] = _float(env, variable, getattr(defaults, name))
        elif (env.get(variable) or "").strip():
            log.warning("%s is set but the %s learner does not use it; ignored", variable, cls.name)
    try:
        return cls.params_type(**values)
    except ValueError as exc:
        # The params name the field ("alpha must be in (0, 1], got 2.0"): name the variable.
        message = str(exc)
        field_name = message.split(" ", 1)[0]
        raise ConfigError(f"QTUNE_{field_name.upper()}: {message}") from None


def _seed(env: Mapping[str, str]) -> int | None:
    raw = (env.get("QTUNE_SEED") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 <= int(raw) < 2**63:
        raise ConfigError(f"QTUNE_SEED must be a whole number from 0 to 2^63 − 1, got {raw!r}")
    return int(raw)


def _shards(env: Mapping[str, str]) -> dict[str, Any]:
    raw_count = (env.get("QTUNE_SHARD_COUNT") or "").strip()
    raw_ids = (env.get("QTUNE_SHARD_IDS") or "").strip()
    if not raw_count:
        if raw_ids:
            raise ConfigError("QTUNE_SHARD_IDS needs QTUNE_SHARD_COUNT (the cluster's total)")
        return {}
    count = _int(env, "QTUNE_SHARD_COUNT", 1)
    if not 1 <= count <= 4096:
        raise ConfigError(f"QTUNE_SHARD_COUNT must be between 1 and 4096, got {raw_count!r}")
    if not raw_ids:
        return {"shard_count": count}
    ids: list[int] = []
    for part in raw_ids.split(","):
        text = part.strip()
        if not text.isdigit() or not 0 <= int(text) < count:
            raise ConfigError(
                f"QTUNE_SHARD_IDS must be a comma list of shard numbers from 0 to {count - 1}, "
                f"got {raw_ids!r}"
            )
        if int(text) in ids:
            raise ConfigError(f"QTUNE_SHARD_IDS lists shard {text} twice")
        ids.append(int(text))
    return {"shard_count": count, "shard_ids": tuple(sorted(ids))}


def _log_level(env: Mapping[str, str]) -> str:
    raw = _text(env, "QTUNE_LOG_LEVEL", "INFO").upper()
    if raw == "WARN":
        raw = "WARNING"
    if raw not in _LEVELS:
        raise ConfigError(f"QTUNE_LOG_LEVEL must be one of {', '.join(_LEVELS)}, got {raw!r}")
    return raw


def _synchronous(env: Mapping[str, str]) -> str:
    raw = _text(env, "QTUNE_SQLITE_SYNCHRONOUS", "full").upper()
    if raw not in SQLITE_SYNCHRONOUS:
        raise ConfigError(
            f"QTUNE_SQLITE_SYNCHRONOUS must be full or normal, got {raw.lower()[:20]!r}"
        )
    return raw


def _loop_lag(env: Mapping[str, str]) -> float | None:
    raw = (env.get("QTUNE_LOOP_LAG") or "").strip().lower()
    if raw in _FALSE:
        return None
    if raw in _TRUE:
        return DEFAULT_LOOP_LAG_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.001 <= value <= 60.0):
        raise ConfigError(
            f"QTUNE_LOOP_LAG must be on, off or a sampling interval in seconds "
            f"(0.001 to 60), got {raw!r}"
        )
    return value


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    wanted = " or ".join(f"{s}://" for s in schemes)
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{name} is not a valid URL; expected {wanted}host[/path]") from None
    if parts.username or parts.password:
        raise ConfigError(f"{name} must not contain credentials")
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ConfigError(f"{name} must be an {wanted} URL with a host, got {_safe_url(raw)!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not have a query string or fragment")
    if name == "DISCORD_API_BASE":
        return raw.rstrip("/")
    return raw


def _safe_url(raw: str) -> str:
    return raw if len(raw) <= 80 else raw[:77] + "..."


async def open_service(
    settings: Settings, db_path: str | os.PathLike | None = None, *, cpu: bool = True
) -> tuple[QTuneService, Storage]:
    """Open the storage and build the service from the settings: ``(service, storage)``.

    ``db_path`` (a path or a PostgreSQL URL) overrides ``QTUNE_DB``.

    The caller owns the storage and must ``await storage.close()``.
    """
    from bot.service import QTuneService
    from bot.workers import CpuPool
    from storage.factory import open_storage

    storage = await open_storage(
        db_path or settings.database,
        genres=settings.genres,
        synchronous=settings.sqlite_synchronous,
    )
    try:
        service = QTuneService(
            storage,
            genres=settings.genres,
            learner=make_learner(
                settings.learner,
                settings.params,
                rewards=(settings.dislike_reward, settings.like_reward),
            ),
            like_reward=settings.like_reward,
            dislike_reward=settings.dislike_reward,
            community=settings.community,
            max_episodes=settings.max_episodes,
            cpu=CpuPool() if cpu else None,
            rng=np.random.default_rng(settings.seed),
        )
    except BaseException:
        await storage.close()
        raise
    return service, storage
