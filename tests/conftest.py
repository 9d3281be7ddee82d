"""Fixtures: a temporary catalog and index per test, the app, its client, the CLI."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient

from searchapp import create_app, operations
from searchapp.cli import main
from searchapp.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


def search(client: FlaskClient, **params: Any) -> dict[str, Any]:
    """GET /api/search with `params`; the JSON answer (a 200 is asserted)."""
    response = client.get("/api/search", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def ids(data: dict[str, Any]) -> list[str]:
    """The ids of an /api/search answer's hits, in order."""
    return [h["id"] for h in data["hits"]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load({"catalog": tmp_path / "instance" / "catalog.sqlite3",
                          "index_dir": tmp_path / "index"}, environ={})


@pytest.fixture(scope="session")
def samples_imported(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """data/samples imported and indexed once per test process, to be copied."""
    root = tmp_path_factory.mktemp("samples")
    settings = Settings.load({"catalog": root / "instance" / "catalog.sqlite3",
                              "index_dir": root / "index"}, environ={})
    operations.import_paths(settings, [SAMPLES])
    return settings


@pytest.fixture
def samples(settings: Settings, samples_imported: Settings) -> Settings:
    """The settings, with data/samples imported and indexed: a copy of the catalog and
    index `searchapp import data/samples` made once per process (about 0.3 s each
    import saved, in some 300 tests)."""
    settings.catalog.parent.mkdir(parents=True, exist_ok=True)
    for name in [p.name for p in samples_imported.catalog.parent.iterdir()
                 if p.name.startswith(samples_imported.catalog.name)]:
        shutil.copy2(samples_imported.catalog.parent / name, settings.catalog.parent / name)
    shutil.copytree(samples_imported.index_dir, settings.index_dir)
    return settings


@contextlib.contextmanager
def app_over(settings: Settings, **config: Any) -> Iterator[Flask]:
    """The app over these settings' catalog and index (plus `config`), its engine closed
    afterwards."""
    app = create_app({"catalog": settings.catalog, "index_dir": settings.index_dir, **config})
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        app.extensions["searchapp.engine"].close()


@contextlib.contextmanager
def mounted(target: Path, *how: str) -> Iterator[Path]:
    """`mount HOW... TARGET` for the length of a test (a small tmpfs, a read-only bind
    mount); the test is skipped where mounting is not permitted (not root, a container
    without the capability)."""
    done = subprocess.run(["mount", *how, str(target)], capture_output=True, text=True,
                          check=False) if shutil.which("mount") else None
    if done is None or done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip() if done else 'no mount'}")
    try:
        yield target
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True,
                          check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """`folder` bind-mounted read-only over itself: nothing in it can be written, not even
    by root (for whom permissions are no obstacle)."""
    with mounted(folder, "--bind", str(folder)):
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)],
                          capture_output=True, check=False).returncode != 0 \
                or not os.statvfs(folder).f_flag & os.ST_RDONLY:
            pytest.skip(f"cannot make {folder} read-only here")
        yield folder


@pytest.fixture
def app(samples: Settings) -> Iterator[Flask]:
    with app_over(samples) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Cli:
    """Runs `searchapp ...` in-process against the test's catalog and index."""

    def __init__(self, settings: Settings) -> None:
        self.env = {"SEARCHAPP_CATALOG": str(settings.catalog),
                    "SEARCHAPP_INDEX_DIR": str(settings.index_dir)}

    def __call__(self, *args: Any) -> Result:
        return CliRunner().invoke(main, [str(a) for a in args], env=self.env,
                                  catch_exceptions=False)


@pytest.fixture
def cli(settings: Settings) -> Cli:
    return Cli(settings)


@pytest.fixture(scope="module")
def read_only_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The app over data/samples, built once per module, for tests that only read.

    Property tests and schemathesis send hundreds of requests; one catalog and
    index serves them all.
    """
    root = tmp_path_factory.mktemp("read-only")
    settings = Settings.load({"catalog": root / "instance" / "catalog.sqlite3",
                              "index_dir": root / "index"}, environ={})
    operations.import_paths(settings, [SAMPLES])
    with app_over(settings) as app:
        yield app
