"""Recently read clicks, kept in the worker's memory.

Clicks this process recorded (`relay up` takes clicks and runs the worker) and clicks the
conversion workflow's first step read: that step and the sends that follow find them here
instead of reading ClickHouse again. The click's IP address and user
agent stay out of Temporal's history that way. Clicks are written once; only their personal
data changes afterwards, blanked when it expires or is erased. So a click is kept at most
`max_age_s` (a send seconds after the first step still finds it), and an erasure in this
process drops it at once (`forget`).
"""

import threading
import time
from collections import OrderedDict

from relay.domain.models import Click
from relay.store.traffic import TrafficStore

# How long a worker of another process may go on using a click erased meanwhile.
CLICK_MAX_AGE_S = 600.0


class ClickCache:
    """A bounded LRU over `TrafficStore.get_click` (blocking; call it off the event loop)."""

    def __init__(
        self, traffic: TrafficStore, size: int = 10_000, max_age_s: float = CLICK_MAX_AGE_S
    ) -> None:
        self._traffic = traffic
        self._size = size
        self._max_age_s = max_age_s
        self._clicks: OrderedDict[str, tuple[Click, float]] = OrderedDict()
        self._forgotten = 0  # erasures so far: a read that raced one is not kept
        self._lock = threading.Lock()

    def cached(self, click_id: str) -> Click | None:
        """Non-blocking: the click if it is in memory."""
        with self._lock:
            entry = self._clicks.get(click_id)
            if entry is None:
                return None
            click, since = entry
            if time.monotonic() - since > self._max_age_s:
                del self._clicks[click_id]
                return None
            self._clicks.move_to_end(click_id)
            return click

    def remember(self, click: Click) -> None:
        """A click this process just recorded: the conversion that follows finds it here."""
        with self._lock:
            self._keep(click)

    def _keep(self, click: Click) -> None:
        self._clicks[click.click_id] = (click, time.monotonic())
        self._clicks.move_to_end(click.click_id)
        while len(self._clicks) > self._size:
            self._clicks.popitem(last=False)

    def forget(self, click_id: str) -> None:
        """Drop a click whose personal data was erased; the next use reads it again."""
        with self._lock:
            self._clicks.pop(click_id, None)
            self._forgotten += 1

    def get(self, click_id: str) -> Click | None:
        click = self.cached(click_id)
        if click is not None:
            return click
        with self._lock:
            forgotten = self._forgotten
        click = self._traffic.get_click(click_id)
        if click is not None:
            with self._lock:
                # Read before an erasure finished: use it this once, do not keep it.
                if self._forgotten == forgotten:
                    self._keep(click)
        return click
