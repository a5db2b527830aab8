"""What ``rasp run`` does in each Python process it starts (see rasp/_bootstrap)."""

from __future__ import annotations

__all__ = ["start"]


def start() -> None:
    """Protect this process with the settings of its environment (``RASP_*``) and the
    nearest ``[tool.rasp]``; the frameworks' entry points are wrapped when imported."""
    import rasp

    rasp.protect()
