"""The store: SQLite by default (a file beside the merged workbook), PostgreSQL by URL."""

from .db import Store, View, open_existing_store, open_store
from .view import StoreView

__all__ = ["Store", "StoreView", "View", "open_existing_store", "open_store"]
