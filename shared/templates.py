"""The deployed template catalog: shared/templates.toml, read and validated once (create_app
reads it at start-up, so a bad entry stops the app with a message naming it)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from shared.domain.catalog import Catalog, parse_catalog

CATALOG_FILE = Path(__file__).with_name("templates.toml")


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return parse_catalog(CATALOG_FILE.read_text(encoding="utf-8"))
