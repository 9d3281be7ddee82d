"""searchapp: search over news published by cooperative organisations."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

# Whoosh 2.7.4 has string literals with invalid escapes, which newer Pythons
# warn about while compiling its modules. Silence exactly those, from there only.
for _category in (DeprecationWarning, SyntaxWarning):
    warnings.filterwarnings(
        "ignore", message=r"invalid escape sequence", category=_category,
        module=r".*whoosh([/\\.].*)?$",
    )

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["__version__", "create_app"]
__version__ = "0.1.0"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The Flask application factory (`flask --app searchapp` finds it)."""
    from searchapp.web import create_app as factory

    return factory(test_config)
