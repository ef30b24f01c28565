"""Write rows with plain SQL, as a user following the seed's schema would (JSON columns as JSON text)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, text


def insert_row(engine: Engine, table: str, **values: Any) -> None:
    """``INSERT INTO table (...) VALUES (...)``; dict and list values are written as JSON text."""
    values = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in values.items()}
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({params})"), values)
