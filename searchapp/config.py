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

from searchapp.engine.scoring import K1, TITLE_BOOST, B, Ranking

PACKAGE_DIR = Path(__file__).resolve().parent


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
    # Which search path serves: auto (arrays when it can), arrays or whoosh (for triage).
    engine: str = "auto"
    # Ranking knobs (searchapp.engine.scoring); the title boost applies when indexing.
    bm25_b: float = B
    bm25_k1: float = K1
    title_boost: float = TITLE_BOOST

    def ranking(self) -> Ranking:
        return Ranking(b=self.bm25_b, k1=self.bm25_k1)

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
            max_upload_bytes=int(env.get("SEARCHAPP_MAX_UPLOAD_BYTES", default.max_upload_bytes)),
            lock_timeout=float(env.get("SEARCHAPP_LOCK_TIMEOUT", default.lock_timeout)),
            engine=env.get("SEARCHAPP_ENGINE", default.engine).strip().lower() or "auto",
        )
        if overrides:
            known = {f.name for f in fields(cls)}
            picked = {k.lower(): v for k, v in overrides.items() if k.lower() in known}
            for key in ("catalog", "index_dir"):
                if key in picked:
                    picked[key] = Path(picked[key])
            settings = replace(settings, **picked)
        return settings
