"""Stage 4, compile: pure functions from the linked workspace to artifacts.

- ``schema``: the database schema (core tables + one extension table per template);
- ``tables``: piccolo ``Table`` classes for that schema, used by the runtime;
- ``ddl``: the SQL that creates it, per dialect.
"""

from .schema import compile_schema
from .spec import ColumnSpec, IndexSpec, SchemaSpec, TableSpec

__all__ = ["ColumnSpec", "IndexSpec", "SchemaSpec", "TableSpec", "compile_schema"]
