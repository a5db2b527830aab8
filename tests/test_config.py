from __future__ import annotations

from pathlib import Path

import pytest

import rasp
from rasp import guard, sinks
from rasp.config import Config, ConfigError, Mode


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No RASP_* variable of the developer's shell and no pyproject.toml of a parent folder
    # may leak into these tests.
    for name in list(__import__("os").environ):
        if name.startswith("RASP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _pyproject(folder: Path, body: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(f'[project]\nname = "app"\n\n[tool.rasp]\n{body}\n', encoding="utf-8")
    return path


def test_defaults() -> None:
    config = Config.load(environ={})
    assert config == Config()
    assert config.mode is Mode.BLOCK
    assert config.body_limit == 1024 * 1024
    assert config.max_inputs == 1_000_000
    assert config.fail_closed is False
    assert config.metrics_path is None
    assert set(config.origins.values()) == {"default"}


def test_precedence_argument_over_env_over_pyproject_over_default(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, 'mode = "off"\nbody-limit = "2KiB"\nmax_inputs = 7')
    environ = {"RASP_MODE": "monitor", "RASP_BODY_LIMIT": "3000"}

    from_file = Config.load(environ={})
    assert (from_file.mode, from_file.body_limit, from_file.max_inputs) == (Mode.OFF, 2048, 7)
    assert from_file.origins["mode"] == str(path)

    from_env = Config.load(environ=environ)
    assert (from_env.mode, from_env.body_limit, from_env.max_inputs) == (Mode.MONITOR, 3000, 7)
    assert from_env.origins["mode"] == "env RASP_MODE"
    assert from_env.origins["max_inputs"] == str(path)
    assert from_env.origins["fail_closed"] == "default"

    from_args = Config.load(environ=environ, mode="block")
    assert from_args.mode is Mode.BLOCK
    assert from_args.body_limit == 3000
    assert from_args.origins["mode"] == "argument"


def test_real_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASP_MODE", "Monitor ")
    monkeypatch.setenv("RASP_FAIL_CLOSED", "yes")
    config = Config.load()
    assert config.mode is Mode.MONITOR
    assert config.fail_closed is True


def test_pyproject_found_in_a_parent_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pyproject(tmp_path, 'mode = "monitor"')
    nested = tmp_path / "src" / "app"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert Config.load(environ={}).mode is Mode.MONITOR


def test_explicit_pyproject_path(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _pyproject(other, "fail_closed = true")
    assert Config.load(environ={}, pyproject=other / "pyproject.toml").fail_closed is True
    assert Config.load(environ={}).fail_closed is False


def test_pyproject_without_rasp_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    assert Config.load(environ={}) == Config()


def test_none_argument_means_not_given() -> None:
    config = Config.load(environ={"RASP_MODE": "monitor"}, mode=None)
    assert config.mode is Mode.MONITOR


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("block", Mode.BLOCK), ("MONITOR", Mode.MONITOR), (" off ", Mode.OFF), (Mode.OFF, Mode.OFF)],
)
def test_mode_values(raw: object, expected: Mode) -> None:
    assert Config.load(environ={}, mode=raw).mode is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("512", 512),
        (2048, 2048),
        ("10b", 10),
        ("1k", 1024),
        ("1KiB", 1024),
        ("1kb", 1000),
        ("1MiB", 1024**2),
        (" 2 MiB ", 2 * 1024**2),
        ("1M", 1024**2),
        ("3mb", 3_000_000),
        ("1GiB", 1024**3),
        ("1gb", 1000**3),
    ],
)
def test_body_limit_sizes(raw: object, expected: int) -> None:
    assert Config.load(environ={"RASP_BODY_LIMIT": str(raw)}).body_limit == expected
    assert Config.load(environ={}, body_limit=raw).body_limit == expected


@pytest.mark.parametrize("raw", ["", "lots", "1.5MiB", "-1", "1TiB", "MiB", True, -5, 1.5])
def test_body_limit_invalid(raw: object) -> None:
    with pytest.raises(ConfigError, match="body_limit") as info:
        Config.load(environ={}, body_limit=raw)
    assert "1MiB" in str(info.value) or "0 or more" in str(info.value)


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), (" 100 ", 100), (5000, 5000)])
def test_max_inputs(raw: object, expected: int) -> None:
    assert Config.load(environ={}, max_inputs=raw).max_inputs == expected


@pytest.mark.parametrize("raw", ["0", "-3", "ten", "1.0", True, 0])
def test_max_inputs_invalid(raw: object) -> None:
    with pytest.raises(ConfigError, match=r"max_inputs.*1 or more"):
        Config.load(environ={}, max_inputs=raw)
    with pytest.raises(ConfigError, match=r"RASP_MAX_INPUTS.*1 or more"):
        Config.load(environ={"RASP_MAX_INPUTS": str(raw)})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True), ("true", True), ("Yes", True), ("ON", True), (True, True),
        ("0", False), ("false", False), ("no", False), (" off ", False), (False, False),
    ],
)  # fmt: skip
def test_fail_closed(raw: object, expected: bool) -> None:
    assert Config.load(environ={}, fail_closed=raw).fail_closed is expected


def test_fail_closed_invalid() -> None:
    with pytest.raises(ConfigError) as info:
        Config.load(environ={"RASP_FAIL_CLOSED": "maybe"})
    message = str(info.value)
    assert "RASP_FAIL_CLOSED" in message
    assert "'maybe'" in message
    assert "true or false" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("/metrics", "/metrics"), (" /-/rasp ", "/-/rasp"), ("off", None), ("", None), (None, None)],
)
def test_metrics_path(raw: object, expected: str | None) -> None:
    assert Config.load(environ={}, metrics_path=raw).metrics_path == expected


def test_metrics_path_none_argument_overrides_env() -> None:
    config = Config.load(environ={"RASP_METRICS_PATH": "/metrics"}, metrics_path=None)
    assert config.metrics_path is None
    assert Config.load(environ={"RASP_METRICS_PATH": "/metrics"}).metrics_path == "/metrics"


def test_metrics_path_must_be_a_path() -> None:
    with pytest.raises(ConfigError, match=r"RASP_METRICS_PATH.*starting with '/'"):
        Config.load(environ={"RASP_METRICS_PATH": "metrics"})


def test_invalid_env_mode_names_the_variable_and_allowed_values() -> None:
    with pytest.raises(ConfigError) as info:
        Config.load(environ={"RASP_MODE": "blok"})
    message = str(info.value)
    assert "RASP_MODE" in message
    assert "'blok'" in message
    for allowed in ("block", "monitor", "off"):
        assert allowed in message


def test_invalid_argument_mode_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"argument mode='blok'.*block, monitor, off"):
        Config.load(environ={}, mode="blok")


def test_invalid_pyproject_value_names_the_file(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, 'mode = "blok"')
    with pytest.raises(ConfigError) as info:
        Config.load(environ={})
    assert "[tool.rasp] mode" in str(info.value)
    assert str(path) in str(info.value)
    assert "block, monitor, off" in str(info.value)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(rasp.ConfigError, ValueError)
    assert rasp.ConfigError is ConfigError


def test_unknown_argument_fails() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'moed'.*mode, body_limit"):
        Config.load(environ={}, moed="block")


def test_unknown_pyproject_setting_fails(tmp_path: Path) -> None:
    _pyproject(tmp_path, 'moed = "block"')
    with pytest.raises(ConfigError, match=r"unknown setting 'moed'"):
        Config.load(environ={})


def test_pyproject_rasp_must_be_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool]\nrasp = "block"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a table"):
        Config.load(environ={})


def test_broken_pyproject_fails(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.rasp\nmode = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read"):
        Config.load(environ={})


def test_config_built_directly_is_normalized_and_checked() -> None:
    # Config(mode="monitor") must behave like Config.load(mode="monitor"): the guard compares
    # modes by identity, so a plain string would silently break every decision.
    assert Config(mode="monitor").mode is Mode.MONITOR  # type: ignore[arg-type]
    assert Config(body_limit="1KiB").body_limit == 1024  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"mode.*block, monitor, off"):
        Config(mode="blok")  # type: ignore[arg-type]


def test_protect_with_a_bad_mode_fails_at_start_up() -> None:
    before = guard.active_config()
    with pytest.raises(rasp.ConfigError, match=r"mode.*block, monitor, off"):
        rasp.protect(mode="blok")
    # Nothing was installed or configured by the failed call.
    assert guard.active_config() is before
    assert sinks.installed() == []


def test_protect_with_bad_env_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASP_MAX_INPUTS", "none")
    with pytest.raises(rasp.ConfigError, match="RASP_MAX_INPUTS"):
        rasp.protect()


def test_protect_returns_the_loaded_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASP_MODE", "monitor")
    try:
        config = rasp.protect(body_limit="64k")
        assert config.mode is Mode.MONITOR
        assert config.body_limit == 64 * 1024
        assert guard.active_config() is config
    finally:
        rasp.unprotect()
    assert guard.active_config().mode is Mode.OFF


def test_protect_rejects_config_and_settings_together() -> None:
    with pytest.raises(ConfigError, match="not both"):
        rasp.protect(Config(), mode="monitor")


def test_wsgi_wrapper_with_bad_setting_fails() -> None:
    def app(environ: object, start_response: object) -> list[bytes]:
        return []

    with pytest.raises(ConfigError, match="mode"):
        rasp.wsgi(app, mode="blok")
