"""The Concord sync server: Starlette + SSE, SQLite embedded (DESIGN.md §4)."""

__version__ = "0.1.0"
