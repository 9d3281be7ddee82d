"""A catalog gone missing or truncated never wipes the index (#11, finding 8)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import SAMPLES, Cli

from searchapp.config import Settings


def documents(cli: Cli) -> int:
    result = cli("stats", "--json")
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["index_documents"])


def test_an_empty_catalog_neither_imports_samples_nor_rebuilds_over_the_index(
        cli: Cli, settings: Settings) -> None:
    assert cli("import", SAMPLES, "-q").exit_code == 0
    settings.catalog.unlink()  # the catalog gone (or SEARCHAPP_CATALOG pointing elsewhere)
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.catalog}{suffix}").unlink(missing_ok=True)
    result = cli("import", SAMPLES, "--if-empty", "-q")  # what `make run` does first
    assert result.exit_code == 1
    assert "is empty but the index holds 35 documents" in result.output
    result = cli("reindex", "--if-needed", "-q")  # and then this
    assert result.exit_code == 1
    assert "refusing to rebuild" in result.output and "has 0 items" in result.output
    assert "holds 35" in result.output and "Traceback" not in result.output
    assert documents(cli) == 35


def test_a_much_smaller_catalog_needs_force(cli: Cli, settings: Settings,
                                            tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"id": f"b{k}", "title": f"Cooperative report {k}"})
                           + "\n" for k in range(40)))
    assert cli("import", big, "--org", "ICA", "-q").exit_code == 0
    shutil.copy(settings.catalog, tmp_path / "full.sqlite3")
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps({"id": "s1", "title": "A small catalog"}) + "\n")
    settings.catalog.unlink()
    result = cli("import", small, "--org", "ICA", "-q")  # into a new, nearly empty catalog
    assert result.exit_code == 3  # stored, not indexed: neither a success nor nothing done
    assert "imported: 1 added, 0 updated, 0 unchanged; stored, but the index was not" \
        " updated: refusing to rebuild" in result.output
    assert "the rebuild would drop 39 of them" in result.output
    assert documents(cli) == 40  # the 40 kept (another catalog: only a rebuild could add)
    result = cli("reindex", "-q")
    assert result.exit_code == 1 and "the rebuild would drop 39 of them" in result.output
    assert documents(cli) == 40
    result = cli("reindex", "--force", "-q")
    assert result.exit_code == 0 and documents(cli) == 1
