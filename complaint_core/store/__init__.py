"""The store: SQLite by default (a file beside the merged workbook), PostgreSQL by URL."""

from .db import Store, open_store

__all__ = ["Store", "open_store"]
