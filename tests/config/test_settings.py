"""Settings: a TOML file under environment variables, and errors that name the bad setting."""

from __future__ import annotations

import pytest

from casework.config import ConfigError, load_settings


def test_defaults_run_on_sqlite_with_an_embedded_server():
    settings = load_settings(environ={})
    assert (settings.event_store, settings.temporal_address, settings.task_queue) == ("sqlite", "", "casework")


def test_environment_overrides_the_config_file(tmp_path):
    config = tmp_path / "casework.toml"
    config.write_text('event_store = "postgres"\npostgres_host = "db"\ntask_queue = "from-file"\n')
    settings = load_settings(environ={"CASEWORK_CONFIG": str(config), "CASEWORK_TASK_QUEUE": "from-env"})
    assert (settings.event_store, settings.postgres_host, settings.task_queue) == ("postgres", "db", "from-env")
    assert settings.store_env()["PERSISTENCE_MODULE"] == "eventsourcing.postgres"


@pytest.mark.parametrize("environ,named", [
    ({"CASEWORK_EMBEDDED_PORT": "seventy"}, "CASEWORK_EMBEDDED_PORT"),
    ({"CASEWORK_EVENT_STORE": "mysql"}, "CASEWORK_EVENT_STORE"),
    ({"CASEWORK_LOG_LEVEL": "loud"}, "CASEWORK_LOG_LEVEL"),
    ({"CASEWORK_EVENTSTORE": "sqlite"}, "unknown setting CASEWORK_EVENTSTORE"),
])
def test_a_bad_setting_is_named(environ, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(environ=environ)


def test_a_bad_config_file_is_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("event_store = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})
    (tmp_path / "typo.toml").write_text('event_stor = "sqlite"\n')
    with pytest.raises(ConfigError, match="event_stor"):
        load_settings(tmp_path / "typo.toml", environ={})


def test_a_misspelt_setting_in_the_file_is_named_but_its_value_not_shown(tmp_path):
    path = tmp_path / "casework.toml"
    path.write_text('webhook_secrte = "whsec_c2VjcmV0LXZhbHVlLTAxMjM0NTY3"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert "webhook_secrte" in str(err.value) and "c2VjcmV0" not in str(err.value)
