from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT


def test_wheel_ships_the_templates_inside_the_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=120,
    )
    (wheel,) = tmp_path.glob("searchapp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for template in sorted(p.name for p in (ROOT / "templates").glob("*.html")):
        assert f"searchapp/templates/{template}" in names
    assert "searchapp/cli.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "searchapp = searchapp.cli:main" in text
