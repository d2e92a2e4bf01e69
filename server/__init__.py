"""The Concord sync server: Starlette + SSE, SQLite embedded (docs/architecture.md §4)."""

__version__ = "0.1.0"
