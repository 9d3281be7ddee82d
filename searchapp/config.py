"""Every setting and its default, in one place.

Settings come from the environment (``SEARCHAPP_*``) and can be overridden by a
mapping, which is what `create_app(test_config)` and the tests use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from searchapp import __version__
from searchapp.engine.scoring import BM25F, K1, TITLE_BOOST, B, Ranking
from searchapp.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent

# Named in every request to a source, so site owners can see who fetches and why.
PROJECT_URL = "https://github.com/searchapp/searchapp"
DEFAULT_USER_AGENT = f"searchapp/{__version__} (+{PROJECT_URL})"


def templates_dir() -> Path:
    """Templates are inside the package in a wheel, at the top level in a checkout."""
    packaged = PACKAGE_DIR / "templates"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / "templates"


@dataclass(frozen=True, slots=True)
class Settings:
    catalog: Path = Path("instance/catalog.sqlite3")
    index_dir: Path = Path("index")
    admin_token: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    # How long an import or rebuild waits for another one to finish.
    lock_timeout: float = 5.0
    # How long an admin job waits for another program holding the catalog's write lock
    # (a sqlite3 shell, a backup tool) before it fails saying so.
    catalog_wait: float = 600.0
    # Which search path serves: auto (arrays when it can), arrays or whoosh (for triage).
    engine: str = "auto"
    # Ranking knobs (searchapp.engine.scoring); the title boost applies when indexing.
    scoring: str = BM25F  # "bm25f" (BM25F proper) or "fields" (per-field BM25, added)
    bm25_b: float = B
    bm25_k1: float = K1
    title_boost: float = TITLE_BOOST
    # Pseudo-relevance feedback (searchapp.feedback): "none" or "rm3" (SEARCHAPP_FEEDBACK).
    feedback: str = "none"

    # Bounded work per request: pages past this many results are refused (400), and a
    # search or item page taking longer than this many seconds answers in part.
    max_result_window: int = 10_000
    search_time_budget: float = 3.0

    def ranking(self) -> Ranking:
        return Ranking(kind=self.scoring, b=self.bm25_b, k1=self.bm25_k1)
    # Fetching sources (`searchapp refresh`); see searchapp.fetch.
    user_agent: str = DEFAULT_USER_AGENT
    fetch_connect_timeout: float = 10.0  # seconds to connect
    fetch_timeout: float = 30.0  # seconds for one whole request, body included
    fetch_max_bytes: int = 20 * 1024 * 1024  # largest body read, after decompression
    fetch_max_redirects: int = 5
    fetch_retries: int = 2  # further tries after a 5xx answer or a timeout
    fetch_backoff: float = 2.0  # seconds before the first retry; doubles each time
    fetch_host_delay: float = 1.0  # seconds between two requests to one host

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
    ) -> Settings:
        env = os.environ if environ is None else environ
        default = cls()
        settings = cls(
            catalog=Path(env.get("SEARCHAPP_CATALOG", default.catalog)),
            index_dir=Path(env.get("SEARCHAPP_INDEX_DIR", default.index_dir)),
            admin_token=env.get("SEARCHAPP_ADMIN_TOKEN") or None,
            max_upload_bytes=_number(env, "SEARCHAPP_MAX_UPLOAD_BYTES", int,
                                     default.max_upload_bytes, minimum=1),
            lock_timeout=_number(env, "SEARCHAPP_LOCK_TIMEOUT", float, default.lock_timeout,
                                 minimum=0),
            catalog_wait=_number(env, "SEARCHAPP_CATALOG_WAIT", float, default.catalog_wait,
                                 minimum=0, maximum=CATALOG_WAIT_MOST),
            engine=_engine(env),
            max_result_window=_number(env, "SEARCHAPP_MAX_RESULT_WINDOW", int,
                                      default.max_result_window, minimum=1),
            search_time_budget=_number(env, "SEARCHAPP_SEARCH_TIME_BUDGET", float,
                                       default.search_time_budget, minimum=0.000001),
            feedback=_feedback(env),
            user_agent=env.get("SEARCHAPP_USER_AGENT", "").strip() or default.user_agent,
            fetch_connect_timeout=_number(env, "SEARCHAPP_FETCH_CONNECT_TIMEOUT", float,
                                          default.fetch_connect_timeout, minimum=0.001),
            fetch_timeout=_number(env, "SEARCHAPP_FETCH_TIMEOUT", float, default.fetch_timeout,
                                  minimum=0.001),
            fetch_max_bytes=_number(env, "SEARCHAPP_FETCH_MAX_BYTES", int,
                                    default.fetch_max_bytes, minimum=1),
            fetch_max_redirects=_number(env, "SEARCHAPP_FETCH_MAX_REDIRECTS", int,
                                        default.fetch_max_redirects, minimum=0),
            fetch_retries=_number(env, "SEARCHAPP_FETCH_RETRIES", int, default.fetch_retries,
                                  minimum=0),
            fetch_backoff=_number(env, "SEARCHAPP_FETCH_BACKOFF", float, default.fetch_backoff,
                                  minimum=0),
            fetch_host_delay=_number(env, "SEARCHAPP_FETCH_HOST_DELAY", float,
                                     default.fetch_host_delay, minimum=0),
        )
        if overrides:
            known = {f.name for f in fields(cls)}
            picked = {k.lower(): v for k, v in overrides.items() if k.lower() in known}
            for key in ("catalog", "index_dir"):
                if key in picked:
                    picked[key] = Path(picked[key])
            settings = replace(settings, **picked)
        return settings


ENGINES = ("auto", "arrays", "whoosh")  # searchapp.engine.CHOICES


def _engine(env: Mapping[str, str]) -> str:
    """SEARCHAPP_ENGINE, or a `ConfigError` naming the choices."""
    raw = env.get("SEARCHAPP_ENGINE", "").strip()
    if raw.lower() not in ("", *ENGINES):
        raise ConfigError(f"SEARCHAPP_ENGINE: must be one of {', '.join(ENGINES)},"
                          f" not {raw!r}")
    return raw.lower() or "auto"


FEEDBACK = ("none", "rm3")  # searchapp.feedback.CHOICES


def _feedback(env: Mapping[str, str]) -> str:
    """SEARCHAPP_FEEDBACK, or a `ConfigError` naming the choices."""
    raw = env.get("SEARCHAPP_FEEDBACK", "").strip()
    if raw.lower() not in ("", *FEEDBACK):
        raise ConfigError(f"SEARCHAPP_FEEDBACK: must be one of {', '.join(FEEDBACK)},"
                          f" not {raw!r}")
    return raw.lower() or "none"


# SQLite takes its busy timeout in milliseconds as a C int: a longer wait (or "inf")
# would overflow into no wait at all.
CATALOG_WAIT_MOST = 2_000_000.0


def _number(env: Mapping[str, str], name: str, kind: type[int | float], default: Any,
            *, minimum: float, maximum: float | None = None) -> Any:
    """A numeric setting from the environment, or a `ConfigError` naming the variable."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    what = "a whole number" if kind is int else "a number"
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be {what}, not {raw!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise ConfigError(f"{name}: must be at least {minimum:g}, not {raw!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}: must be at most {maximum:,.0f}, not {raw!r}")
    return value
