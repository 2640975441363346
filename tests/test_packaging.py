"""`mailvault` from a regular (non-editable) install: the wheel built from this tree, installed
with its dependencies into a fresh virtual environment (no system site packages), runs `--help`
and `init` against the services, away from the source tree. Dependencies come from PyPI through
pip's cache (~/.cache/pip), so only the first run downloads them. Deselect with -m "not
packaging"; it needs nothing from the rest of the suite, so it can run beside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archiver import bootstrap
from archiver.settings import Settings
from bench.cleanup import drop_bucket, drop_index, throwaway_settings

pytestmark = [pytest.mark.services, pytest.mark.packaging]

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "archiver", "ingest", "search_api"]


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(tmp_path: Path) -> Path:
    """Built from a copy of what the wheel is made of: no build/ or egg-info in the tree."""
    tree = tmp_path / "tree"
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy(source, tree / name)
    out = tmp_path / "wheels"
    # build isolation: the build backend pyproject.toml names, not whatever setuptools is here
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out, tree, cwd=tmp_path)
    (wheel,) = out.glob("mailvault-*.whl")
    return wheel


def test_the_wheel_installs_and_mailvault_init_runs(settings: Settings, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python, mailvault = venv / "bin" / "python", venv / "bin" / "mailvault"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    run(python, "-m", "pip", "install", "--quiet", wheel, env=env, cwd=tmp_path)

    where = run(python, "-c", "import archiver; print(archiver.__file__)", env=env, cwd=tmp_path)
    assert where.startswith(str(venv)), where  # the installed package, not the source tree
    assert "init" in run(mailvault, "--help", env=env, cwd=tmp_path)

    own = throwaway_settings(settings, f"{settings.es_index}-wheel")
    env.update({"MAILVAULT_ES_INDEX": own.es_index, "MAILVAULT_S3_BUCKET": own.s3_bucket})
    try:
        assert "bucket and index ready" in run(mailvault, "init", env=env, cwd=tmp_path)
        store, index = bootstrap.raw_store(own), bootstrap.search_index(own)
        assert store.client.bucket_exists(own.s3_bucket)
        assert index.client.indices.exists_alias(name=own.es_index)
        assert index.client.indices.exists_index_template(name=f"{own.es_index}-template")
    finally:
        drop_index(bootstrap.search_index(own).client, own.es_index)
        drop_bucket(bootstrap.raw_store(own).client, own.s3_bucket)
