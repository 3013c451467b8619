"""The generators of the published contract files (`python -m casework.schemas`, `python -m
casework.web.openapi`) in their own processes: `--help` is help and writes nothing, an unknown option
is a usage error, and writing and `--check` still do what they did."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.json"))}


def test_help_prints_help_and_writes_nothing(tmp_path):
    published = digest(ROOT / "docs" / "schemas"), (ROOT / "docs" / "openapi.json").read_bytes()
    for module in ("casework.schemas", "casework.web.openapi"):
        for flag in ("--help", "-h"):
            r = run(module, flag, cwd=tmp_path)
            assert r.returncode == 0 and r.stdout.startswith(f"Usage: python -m {module} [OPTIONS]"), r
            assert "--check" in r.stdout and "wrote" not in r.stdout
        bogus = run(module, "--bogus", cwd=tmp_path)
        assert bogus.returncode == 2 and "No such option '--bogus'" in bogus.stderr, bogus
    assert list(tmp_path.iterdir()) == []  # no file named --help, nothing else
    assert (digest(ROOT / "docs" / "schemas"), (ROOT / "docs" / "openapi.json").read_bytes()) == published


def test_writing_and_checking_still_work(tmp_path):
    doc = tmp_path / "openapi.json"
    assert run("casework.web.openapi", "--check", str(doc), cwd=tmp_path).returncode == 1  # missing: stale
    wrote = run("casework.web.openapi", str(doc), cwd=tmp_path)
    assert wrote.returncode == 0 and wrote.stdout == f"wrote {doc}\n"
    assert doc.read_bytes() == (ROOT / "docs" / "openapi.json").read_bytes()  # the published one is current
    assert run("casework.web.openapi", "--check", str(doc), cwd=tmp_path).returncode == 0
    doc.write_text("{}\n")
    stale = run("casework.web.openapi", str(doc), "--check", cwd=tmp_path)
    assert stale.returncode == 1 and "is out of date" in stale.stderr

    out = tmp_path / "schemas"
    assert run("casework.schemas", "--check", "--out", str(out), cwd=tmp_path).returncode == 1
    wrote = run("casework.schemas", "--out", str(out), cwd=tmp_path)
    assert wrote.returncode == 0 and wrote.stdout.startswith("wrote ") and wrote.stdout.endswith(f"schemas to {out}\n")
    assert digest(out) == digest(ROOT / "docs" / "schemas")
    assert run("casework.schemas", "--check", "--out", str(out), cwd=tmp_path).returncode == 0
    (out / "events.json").write_text("{}\n")
    assert run("casework.schemas", "--check", "--out", str(out), cwd=tmp_path).returncode == 1
    assert run("casework.schemas", "--check", cwd=tmp_path).returncode == 0  # the published ones are current
