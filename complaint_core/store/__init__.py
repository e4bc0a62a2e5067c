"""The store: SQLite by default (a file beside the merged workbook), PostgreSQL by URL."""

from .db import Store, View, open_existing_store, open_store

__all__ = ["Store", "View", "open_existing_store", "open_store"]
