"""Change subscribers of the lab's emulators (the fabric reconciler listens to both in-process)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")


class Subscribers(Generic[E]):
    """Callbacks told of each event, in the notifier's thread; thread-safe.

    A callback that raises is logged and skipped: a broken subscriber must never break the
    API it observes, nor keep the others from hearing the event.
    """

    def __init__(self, what: str) -> None:
        self._what = what  # who notifies, for the log
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[E], None]] = []

    def subscribe(self, callback: Callable[[E], None]) -> Callable[[], None]:
        """Add ``callback``; returns the function that removes it again."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def notify(self, event: E) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("%s subscriber %r failed on %s", self._what, callback, event)
