"""A small Django shop on SQLite, vulnerable to injections on purpose (see ../README.md)."""
