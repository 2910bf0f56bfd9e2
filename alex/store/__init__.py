"""Arrays <-> disk: the store layout, its atomic writer, its reader and DuckDB views.

This package never imports ``alex.pipeline`` or ``alex.heads``.
"""
