"""Change notifications: who listens to which folder, and handing changes to their loops.

`publish` is called from a worker thread right after the index transaction committed,
still under the folder lock, so the changes of one folder are queued to each subscriber's
event loop (`call_soon_threadsafe`, FIFO) in commit order. Callbacks run on the loop that
subscribed; one that raises is logged and does not disturb the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable

from .model import Change

log = logging.getLogger(__name__)

ChangeCallback = Callable[[Change], None]


class Subscription:
    def __init__(
        self,
        notifier: Notifier,
        key: tuple[str, str | None],
        loop: asyncio.AbstractEventLoop,
        callback: ChangeCallback,
    ) -> None:
        self._notifier = notifier
        self._key = key
        self._loop = loop
        self._callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Stop receiving changes (idempotent). A change already queued is dropped."""
        if not self.cancelled:
            self.cancelled = True
            self._notifier._remove(self._key, self)

    def _post(self, change: Change) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._run, change)
        except RuntimeError:  # the loop is closed: the subscriber is gone
            return False
        return True

    def _run(self, change: Change) -> None:
        if self.cancelled:
            return
        try:
            self._callback(change)
        except Exception:
            log.exception(
                "store.notify_callback_failed folder=%s kind=%s", change.folder, change.kind
            )


class Notifier:
    """Subscriptions per (mailbox root, folder); folder None listens to every folder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[tuple[str, str | None], list[Subscription]] = {}

    def subscribe(
        self,
        root: str,
        folder: str | None,
        loop: asyncio.AbstractEventLoop,
        callback: ChangeCallback,
    ) -> Subscription:
        key = (root, folder)
        sub = Subscription(self, key, loop, callback)
        with self._lock:
            self._subs.setdefault(key, []).append(sub)
        return sub

    def _remove(self, key: tuple[str, str | None], sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(key)
            if subs is not None and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self._subs[key]

    def publish(self, root: str, changes: Iterable[Change]) -> None:
        for change in changes:
            with self._lock:
                targets = [
                    *self._subs.get((root, change.folder), ()),
                    *self._subs.get((root, None), ()),
                ]
            for sub in targets:
                if not sub._post(change):
                    sub.cancel()
