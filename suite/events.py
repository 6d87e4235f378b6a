"""In-process event bus: plugins subscribe by name (``content.saved``) instead of importing each other."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("suite.events")


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[..., Any]]] = {}

    def on(self, name: str, listener: Callable[..., Any]) -> None:
        self._listeners.setdefault(name, []).append(listener)

    def listeners(self, name: str) -> list[Callable[..., Any]]:
        return list(self._listeners.get(name, ()))

    async def emit(self, name: str, **payload: Any) -> None:
        """Call every listener; a failing listener is logged and does not stop the others."""
        for listener in self.listeners(name):
            try:
                result = listener(**payload)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("listener %r for event %s failed", listener, name)
