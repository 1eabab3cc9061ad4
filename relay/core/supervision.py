"""Background parts report whether they make progress; `/readyz` and `/metrics` read them.

A part is anything that runs behind the requests and can stall delivery without a caller
noticing: a batch writer, the forwarder, the inbox's committer, the config refresher, the
retention job. Each reports `ok()` once it makes progress and `stuck(reason)` when it
cannot; a transition is logged once (not on every retry), with the cause. The registry is
process-wide (like the metrics registry) and thread-safe: batch writers report from their
own threads.

`supervise` runs an asyncio part forever: an exception is logged once with its cause, the
part is reported stuck, and it restarts after a backoff (0.5 s doubling to 30 s); only a
cancellation stops it.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def backoff(failures: int) -> float:
    """The wait before retry number `failures` (1-based), capped."""
    return BACKOFF_S[min(max(failures, 1), len(BACKOFF_S)) - 1]


@dataclass(frozen=True)
class PartState:
    name: str
    ready: bool
    reason: str
    since: float  # time.time() of the last transition


class Part:
    """One part's state; create through `PARTS.part(name)`."""

    def __init__(self, registry: "Parts", name: str) -> None:
        self._registry = registry
        self.name = name

    def ok(self) -> None:
        self._registry._set(self.name, True, "")

    def stuck(self, reason: str, exc: BaseException | None = None) -> None:
        self._registry._set(self.name, False, reason, exc)

    def forget(self) -> None:
        """The part stopped on purpose (closed): no longer reported."""
        self._registry.forget(self.name)


class Faults:
    """A part with several independent causes of being stuck (one per failing entry, say):
    stuck while any cause remains, ok once none does. For one event loop (not thread-safe).
    The first `clear` reports ok even without a cause, so a part that makes progress is
    listed from then on."""

    def __init__(self, part: Part) -> None:
        self.part = part
        self._causes: dict[str, str] = {}
        self._reported = False

    def fail(self, key: str, reason: str, exc: BaseException | None = None) -> None:
        self._causes[key] = reason
        self._report(exc)

    def clear(self, key: str) -> None:
        if self._causes.pop(key, None) is not None or not self._reported:
            self._report(None)

    @property
    def failing(self) -> bool:
        return bool(self._causes)

    def _report(self, exc: BaseException | None) -> None:
        self._reported = True
        if not self._causes:
            self.part.ok()
            return
        first = next(iter(self._causes.values()))
        more = len(self._causes) - 1
        self.part.stuck(f"{first} (and {more} more)" if more else first, exc)


class Parts:
    """The process's parts by name; a part not reporting is not listed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, PartState] = {}

    def part(self, name: str) -> Part:
        return Part(self, name)

    def _set(self, name: str, ready: bool, reason: str, exc: BaseException | None = None) -> None:
        with self._lock:
            before = self._states.get(name)
            changed = before is None or before.ready != ready
            since = time.time() if changed or before is None else before.since
            self._states[name] = PartState(name, ready, reason, since)
        if not changed:
            return
        if ready and before is not None:
            log.warning("%s recovered after %.1f s", name, time.time() - before.since)
        elif not ready:
            log.error("%s cannot make progress: %s", name, reason, exc_info=exc)

    def forget(self, name: str) -> None:
        """The part stopped on purpose (closed): no longer reported."""
        with self._lock:
            self._states.pop(name, None)

    def stuck(self) -> dict[str, str]:
        """Parts that cannot make progress now, with why."""
        with self._lock:
            return {s.name: s.reason for s in self._states.values() if not s.ready}

    def states(self) -> list[PartState]:
        with self._lock:
            return sorted(self._states.values(), key=lambda s: s.name)


PARTS = Parts()


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    part: Part | None = None,
    wait: Callable[[int], float] = backoff,
) -> None:
    """Run `run()` again whenever it raises (or returns), until cancelled."""
    part = part or PARTS.part(name)
    failures = 0
    while True:
        started = time.monotonic()
        try:
            await run()
            reason, exc = "stopped by itself", None
        except asyncio.CancelledError:
            raise
        except Exception as err:
            reason, exc = f"{type(err).__name__}: {err}", err
        if time.monotonic() - started > 60:
            failures = 0  # it ran a good while: start the backoff again
        failures += 1
        part.stuck(f"{reason}; restarting (attempt {failures})", exc)
        await asyncio.sleep(wait(failures))
