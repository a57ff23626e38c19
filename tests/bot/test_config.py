"""Settings: defaults, .env loading, validation messages, and the token never shown."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, open_service
from bot.engine.learners import DEFAULT_LEARNER, DynaParams, SeedParams
from bot.engine.learners.dyna import RewardScale
from bot.engine.qlearning import DEFAULT_GENRES
from storage.sqlite import SQLiteStorage

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIzNDU2Nzg5.secret-token-value.XYZ"


def test_defaults_are_the_seeds():
    s = Settings.from_env({})
    assert s.token is None
    assert s.db_path == Path("data/qtune.sqlite3")
    assert s.dev_guild is None
    assert s.genres == DEFAULT_GENRES
    assert s.params == DynaParams()
    assert s.learner == DEFAULT_LEARNER
    assert (s.like_reward, s.dislike_reward) == (10.0, -5.0)
    assert s.max_episodes == 100_000
    assert 0 < s.cooldown <= 10
    assert s.guild_ready_timeout == 2.0
    assert s.loop_lag_interval is None
    assert s.api_base == "https://discord.com/api/v10"
    assert s.gateway_url == "wss://gateway.discord.gg/"


def test_values_are_parsed():
    s = Settings.from_env(
        {
            "DISCORD_TOKEN": f"  {TOKEN} ",
            "QTUNE_DB": "/tmp/x/q.db",
            "QTUNE_DEV_GUILD": "123456789012345678",
            "QTUNE_GENRES": " Pop, Rock ,Metal",
            "QTUNE_LEARNER": "seed",
            "QTUNE_ALPHA": "0.5",
            "QTUNE_GAMMA": "0",
            "QTUNE_EPSILON": "0.3",
            "QTUNE_EPSILON_DECAY": "0.9",
            "QTUNE_EPSILON_MIN": "0.05",
            "QTUNE_REWARD_LIKE": "3",
            "QTUNE_REWARD_DISLIKE": "-1.5",
            "QTUNE_LOG_LEVEL": "debug",
            "QTUNE_COOLDOWN": "0",
            "QTUNE_MAX_EPISODES": "5_000",
            "QTUNE_GUILD_READY_TIMEOUT": "0.1",
            "QTUNE_LOOP_LAG": "on",
            "DISCORD_API_BASE": "http://127.0.0.1:8080/api/v10/",
            "DISCORD_GATEWAY_URL": "ws://127.0.0.1:8080/gateway",
        }
    )
    assert s.token == TOKEN
    assert s.db_path == Path("/tmp/x/q.db")
    assert s.dev_guild == 123456789012345678
    assert s.genres == ("Pop", "Rock", "Metal")
    assert s.params == SeedParams(0.5, 0.0, 0.3, 0.9, 0.05)
    assert (s.like_reward, s.dislike_reward) == (3.0, -1.5)
    assert s.log_level == "DEBUG"
    assert s.cooldown == 0.0
    assert s.max_episodes == 5000
    assert s.guild_ready_timeout == 0.1
    assert s.loop_lag_interval == pytest.approx(0.05)
    assert s.api_base == "http://127.0.0.1:8080/api/v10"  # trailing slash dropped
    assert s.gateway_url == "ws://127.0.0.1:8080/gateway"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"QTUNE_ALPHA": "2", "QTUNE_LEARNER": "seed"}, "QTUNE_ALPHA"),
        ({"QTUNE_ALPHA": "abc", "QTUNE_LEARNER": "seed"}, "QTUNE_ALPHA"),
        ({"QTUNE_GAMMA": "1"}, "QTUNE_GAMMA"),
        ({"QTUNE_EPSILON": "-0.1", "QTUNE_LEARNER": "seed"}, "QTUNE_EPSILON"),
        ({"QTUNE_EPSILON_DECAY": "0", "QTUNE_LEARNER": "seed"}, "QTUNE_EPSILON_DECAY"),
        ({"QTUNE_EPSILON_MIN": "nan", "QTUNE_LEARNER": "seed"}, "QTUNE_EPSILON_MIN"),
        ({"QTUNE_GENRES": "Pop"}, "QTUNE_GENRES"),
        ({"QTUNE_GENRES": "Pop,pop"}, "QTUNE_GENRES"),
        ({"QTUNE_GENRES": "Pop,,Rock"}, "QTUNE_GENRES"),
        ({"QTUNE_DEV_GUILD": "my-server"}, "QTUNE_DEV_GUILD"),
        ({"QTUNE_DEV_GUILD": "-5"}, "QTUNE_DEV_GUILD"),
        ({"QTUNE_LEARNER": "no-such-learner"}, "QTUNE_LEARNER"),
        ({"QTUNE_REWARD_LIKE": "lots"}, "QTUNE_REWARD_LIKE"),
        ({"QTUNE_REWARD_DISLIKE": "inf"}, "QTUNE_REWARD_DISLIKE"),
        ({"QTUNE_LOG_LEVEL": "LOUD"}, "QTUNE_LOG_LEVEL"),
        ({"QTUNE_COOLDOWN": "-1"}, "QTUNE_COOLDOWN"),
        ({"QTUNE_MAX_EPISODES": "100001"}, "QTUNE_MAX_EPISODES"),
        ({"QTUNE_MAX_EPISODES": "0"}, "QTUNE_MAX_EPISODES"),
        ({"QTUNE_MAX_EPISODES": "1.5"}, "QTUNE_MAX_EPISODES"),
        ({"QTUNE_GUILD_READY_TIMEOUT": "-2"}, "QTUNE_GUILD_READY_TIMEOUT"),
        ({"QTUNE_LOOP_LAG": "sometimes"}, "QTUNE_LOOP_LAG"),
        ({"QTUNE_SQLITE_SYNCHRONOUS": "off"}, "QTUNE_SQLITE_SYNCHRONOUS"),
        ({"DISCORD_API_BASE": "ftp://example.com/api"}, "DISCORD_API_BASE"),
        ({"DISCORD_API_BASE": "not a url"}, "DISCORD_API_BASE"),
        ({"DISCORD_API_BASE": "http://"}, "DISCORD_API_BASE"),
        ({"DISCORD_API_BASE": "http://host:99999/api"}, "DISCORD_API_BASE"),
        ({"DISCORD_API_BASE": "https://u:p@proxy/api/v10"}, "DISCORD_API_BASE"),
        ({"DISCORD_GATEWAY_URL": "https://gateway.discord.gg"}, "DISCORD_GATEWAY_URL"),
        ({"DISCORD_GATEWAY_URL": "wss://"}, "DISCORD_GATEWAY_URL"),
    ],
)
def test_invalid_values_name_the_variable_in_one_line(env, variable):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"DISCORD_TOKEN": TOKEN, **env})
    message = str(info.value)
    assert variable in message
    assert "\n" not in message
    assert TOKEN not in message


def test_token_is_only_required_to_run():
    s = Settings.from_env({})
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        s.require_token()
    assert Settings.from_env({"DISCORD_TOKEN": TOKEN}).require_token() == TOKEN


def test_token_with_whitespace_is_rejected_without_echoing_it():
    bad = "abc def.ghijkl"
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"DISCORD_TOKEN": bad})
    assert "DISCORD_TOKEN" in str(info.value)
    assert bad not in str(info.value)
    assert "ghijkl" not in str(info.value)


def test_token_never_in_repr_str_or_errors_that_echo_values():
    s = Settings.from_env({"DISCORD_TOKEN": TOKEN})
    assert TOKEN not in repr(s)
    assert TOKEN not in str(s)
    # A value that happens to contain the token is echoed redacted.
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"DISCORD_TOKEN": TOKEN, "QTUNE_GAMMA": TOKEN})
    assert TOKEN not in str(info.value)
    assert "QTUNE_GAMMA" in str(info.value)


def test_dotenv_fills_in_but_never_overrides_the_environment(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"DISCORD_TOKEN={TOKEN}\nQTUNE_LEARNER=seed\nQTUNE_ALPHA=0.5\nQTUNE_GENRES=A,B,C\n",
        encoding="utf-8",
    )
    for name in list(os.environ):
        if name.startswith(("QTUNE_", "DISCORD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QTUNE_ALPHA", "0.25")
    s = Settings.from_env(env_file=env_file)
    assert s.token == TOKEN
    assert s.params.alpha == 0.25  # the real environment wins
    assert s.genres == ("A", "B", "C")
    assert "QTUNE_GENRES" not in os.environ  # .env is not written into os.environ


def config_variables() -> set[str]:
    """Every variable ``bot/config.py`` reads: the names quoted in its source."""
    source = (ROOT / "bot" / "config.py").read_text(encoding="utf-8")
    return set(re.findall(r'"((?:QTUNE|DISCORD)_[A-Z_]+)"', source))


def readme_config_table() -> set[str]:
    """The variables the README's configuration table has a row for."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("### Configuration")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        rows.append(line)
    table = [r for r in rows if r.startswith("| `")]
    # A paragraph inside the table would end it: the rows after it lose their header.
    first, last = rows.index(table[0]), rows.index(table[-1])
    assert all(r.startswith("|") for r in rows[first : last + 1]), "the table is split"
    first_cells = [row.split("|")[1] for row in table]
    return {name for cell in first_cells for name in re.findall(r"`((?:QTUNE|DISCORD)_\w+)`", cell)}


def test_the_readme_table_has_a_row_for_every_variable() -> None:
    assert readme_config_table() == config_variables()


def test_env_example_documents_every_variable_and_matches_defaults():
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    names = {
        line.split("=", 1)[0].strip()
        for line in text.splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    # The seed learner's own settings are shown commented out, under their learner's
    # name: with the default learner they do nothing, so they are not offered as its own.
    seed_only = {"QTUNE_ALPHA", "QTUNE_EPSILON", "QTUNE_EPSILON_DECAY", "QTUNE_EPSILON_MIN"}
    commented = {
        line.lstrip("# ").split("=", 1)[0].strip()
        for line in text.splitlines()
        if line.startswith("#QTUNE_")
    }
    assert commented == seed_only
    assert "seed learner only" in text
    assert names | commented == config_variables()
    # Every variable has a comment right above it (possibly after other variables).
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            above = [x for x in lines[:i] if x.strip()]
            assert above, line
            assert above[-1].startswith("#") or "=" in above[-1], line
    # The example, as written, loads to the defaults (apart from the empty token).
    from dotenv import dotenv_values

    values = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    assert Settings.from_env(values) == Settings()


@pytest.mark.parametrize(("like", "dislike"), [("-5", "10"), ("1", "1")])
def test_like_must_reward_more_than_dislike(like: str, dislike: str) -> None:
    env = {"QTUNE_REWARD_LIKE": like, "QTUNE_REWARD_DISLIKE": dislike}
    with pytest.raises(ConfigError, match="QTUNE_REWARD_LIKE"):
        Settings.from_env(env)


async def test_open_service_gives_the_learner_the_configured_reward_range(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"QTUNE_LEARNER": "dyna", "QTUNE_REWARD_LIKE": "3", "QTUNE_REWARD_DISLIKE": "-1"}
    )
    service, storage = await open_service(settings, tmp_path / "r.db")
    try:
        assert service.learner.scale == RewardScale(-1.0, 3.0)
    finally:
        await storage.close()


@pytest.mark.parametrize(("value", "pragma"), [("", 2), ("normal", 1), (" FULL ", 2)])
async def test_the_sqlite_synchronous_setting_reaches_the_database(
    tmp_path: Path, value: str, pragma: int
) -> None:
    settings = Settings.from_env({"QTUNE_SQLITE_SYNCHRONOUS": value})
    _, storage = await open_service(settings, tmp_path / "s.db", cpu=False)
    try:
        assert isinstance(storage, SQLiteStorage)
        got = await storage._worker.run(
            lambda: storage._worker.conn.execute("PRAGMA synchronous").fetchone()[0]
        )
        assert got == pragma  # 2 = FULL, 1 = NORMAL
    finally:
        await storage.close()


def test_a_postgresql_url_selects_postgresql_and_hides_its_password() -> None:
    url = "postgresql://qtune:s3cret@db.example:5433/qtune"
    s = Settings.from_env({"QTUNE_DB": url})
    assert s.db_url == url
    assert s.database == url
    assert "s3cret" not in repr(s)
    assert Settings.from_env({"QTUNE_DB": "postgres://h/db"}).database == "postgres://h/db"
    assert Settings.from_env({"QTUNE_DB": "/tmp/q.db"}).database == "/tmp/q.db"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("mysql://u:pw@h/db", "neither a file path nor a postgresql:// URL"),
        ("postgresql://u:pw@h:99999/db", "not a valid URL"),
        ("postgresql://u:pw@h", "names no database"),
    ],
)
def test_a_bad_database_url_is_one_line_without_the_password(value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as err:
        Settings.from_env({"QTUNE_DB": value})
    assert str(err.value).startswith("QTUNE_DB: ")
    assert "pw" not in str(err.value)
    assert "\n" not in str(err.value)


async def test_qtune_seed_makes_the_bots_choices_replay(tmp_path: Path) -> None:
    """Two services from the same QTUNE_SEED suggest the same genres; a bad seed is one line."""
    settings = Settings.from_env({"QTUNE_SEED": "42", "QTUNE_LEARNER": "seed"})
    assert settings.seed == 42
    runs = []
    for name in ("a.db", "b.db"):
        service, storage = await open_service(settings, tmp_path / name, cpu=False)
        try:
            runs.append([(await service.recommend(7, "Rock")).action for _ in range(12)])
        finally:
            await storage.close()
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 1  # ε = 1: random picks, so equality is not by chance
    assert Settings.from_env({}).seed is None
    with pytest.raises(ConfigError, match="QTUNE_SEED") as err:
        Settings.from_env({"QTUNE_SEED": "abc"})
    assert "\n" not in str(err.value)


def test_each_learner_reads_only_its_own_settings(caplog: pytest.LogCaptureFixture) -> None:
    """QTUNE_ALPHA and the ε settings are the seed learner's: dyna ignores them, and says so."""
    env = {"QTUNE_ALPHA": "0.5", "QTUNE_EPSILON_MIN": "0.2", "QTUNE_GAMMA": "0.8"}
    with caplog.at_level("WARNING", logger="bot.config"):
        dyna = Settings.from_env(env)
    assert dyna.params == DynaParams(gamma=0.8)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "QTUNE_ALPHA" in warned
    assert "QTUNE_EPSILON_MIN" in warned
    assert "QTUNE_GAMMA" not in warned
    caplog.clear()
    with caplog.at_level("WARNING", logger="bot.config"):
        seed = Settings.from_env({**env, "QTUNE_LEARNER": "seed"})
    assert seed.params == SeedParams(alpha=0.5, gamma=0.8, epsilon_min=0.2)
    assert not caplog.records


def test_shards_unset_keep_the_unsharded_bot() -> None:
    s = Settings.from_env({})
    assert (s.shard_count, s.shard_ids, s.sharded, s.syncs_commands) == (None, None, False, True)
    assert s.owns_guild(12345 << 22)


def test_shard_count_and_ids_choose_this_processs_shards() -> None:
    s = Settings.from_env({"QTUNE_SHARD_COUNT": "4", "QTUNE_SHARD_IDS": " 3, 1"})
    assert (s.shard_count, s.shard_ids, s.sharded) == (4, (1, 3), True)
    assert not s.syncs_commands  # shard 0 runs elsewhere: that process syncs
    assert s.owns_guild((7 << 22) | 5)  # (id >> 22) % 4 == 3
    assert not s.owns_guild(8 << 22)
    assert not s.owns_guild(None)  # DMs go to shard 0
    everything = Settings.from_env({"QTUNE_SHARD_COUNT": "2"})
    assert everything.shard_ids is None
    assert everything.syncs_commands
    assert everything.owns_guild(1 << 22)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"QTUNE_SHARD_IDS": "0"}, "QTUNE_SHARD_IDS needs QTUNE_SHARD_COUNT"),
        ({"QTUNE_SHARD_COUNT": "0"}, "QTUNE_SHARD_COUNT must be between 1 and 4096"),
        ({"QTUNE_SHARD_COUNT": "two"}, "QTUNE_SHARD_COUNT must be a whole number"),
        ({"QTUNE_SHARD_COUNT": "4", "QTUNE_SHARD_IDS": "0,4"}, "from 0 to 3, got '0,4'"),
        ({"QTUNE_SHARD_COUNT": "4", "QTUNE_SHARD_IDS": "1,-1"}, "from 0 to 3"),
        ({"QTUNE_SHARD_COUNT": "4", "QTUNE_SHARD_IDS": "1,1"}, "lists shard 1 twice"),
    ],
)
def test_bad_shard_settings_are_one_line(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as err:
        Settings.from_env(env)
    assert "\n" not in str(err.value)
