"""Recently read clicks, kept in the worker's memory.

Clicks this process recorded (`relay up` takes clicks and runs the worker) and clicks the
conversion workflow's first step read: that step and the sends that follow find them here
instead of reading ClickHouse again. The click's IP address and user
agent stay out of Temporal's history that way. Clicks are written once and never updated.
"""

import threading
from collections import OrderedDict

from relay.models import Click
from relay.store.traffic import TrafficStore


class ClickCache:
    """A bounded LRU over `TrafficStore.get_click` (blocking; call it off the event loop)."""

    def __init__(self, traffic: TrafficStore, size: int = 10_000) -> None:
        self._traffic = traffic
        self._size = size
        self._clicks: OrderedDict[str, Click] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, click_id: str) -> Click | None:
        """Non-blocking: the click if it is in memory."""
        with self._lock:
            click = self._clicks.get(click_id)
            if click is not None:
                self._clicks.move_to_end(click_id)
            return click

    def remember(self, click: Click) -> None:
        """A click this process just recorded: the conversion that follows finds it here."""
        with self._lock:
            self._clicks[click.click_id] = click
            while len(self._clicks) > self._size:
                self._clicks.popitem(last=False)

    def get(self, click_id: str) -> Click | None:
        click = self.cached(click_id)
        if click is not None:
            return click
        click = self._traffic.get_click(click_id)
        if click is not None:
            self.remember(click)
        return click
