"""Response sizes with and without compression, on data/samples.

Imports the samples into a temporary catalog and index, asks the app (through
Flask's test client, so no network is measured) for a few responses with
`Accept-Encoding: identity`, `gzip` and `br`, and prints the body sizes as a
Markdown table. Sizes are deterministic for a given app and data.

    python bench/compression.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from searchapp import create_app, operations
from searchapp.config import Settings

ROOT = Path(__file__).resolve().parent.parent
URLS = ("/", "/?q=cooperatives&organisation=ILO", "/api/search?q=cooperatives&per_page=100",
        "/feed.atom?q=cooperatives")
ENCODINGS = ("identity", "gzip", "br")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings.load({"catalog": root / "catalog.sqlite3",
                                  "index_dir": root / "index"}, environ={})
        operations.import_paths(settings, [ROOT / "data" / "samples"])
        app = create_app({"catalog": settings.catalog, "index_dir": settings.index_dir})
        client = app.test_client()
        print("| response | " + " | ".join(ENCODINGS) + " |")
        print("| --- |" + " ---: |" * len(ENCODINGS))
        for url in URLS:
            sizes = []
            for encoding in ENCODINGS:
                response = client.get(url, headers={"Accept-Encoding": encoding})
                used = response.headers.get("Content-Encoding", "identity")
                assert used == encoding, f"{url}: asked for {encoding}, got {used}"
                sizes.append(f"{len(response.data):,} B")
            print(f"| `{url}` | " + " | ".join(sizes) + " |")
        app.extensions["searchapp.engine"].close()


if __name__ == "__main__":
    main()
