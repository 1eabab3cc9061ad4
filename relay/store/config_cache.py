"""Configuration read from memory: networks, campaigns, pixels, custom conversions, postbacks.

Accepting a postback and planning its deliveries read only this snapshot, never ClickHouse.
It stays fresh within a documented bound:
- a change made through this process (the admin API) is visible to the next read;
- a change made by another process is visible within `refresh_s` (a cheap version query,
  `max(version)` and row count per table, decides whether to reload);
- a lookup that misses (an unknown postback key, campaign or pixel) reloads at once, at most
  once per `refresh_s`, so a network created a moment ago elsewhere is not refused.

Networks are found by the keyed hash of their postback key (the store has no clear key).
"""

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from relay.domain.models import Campaign, CustomConversion, Network, OutboundPostback, Pixel
from relay.store.config import TABLES, ConfigStore

_VERSIONED = [*TABLES.values(), "pixels", "workspace_settings"]


@dataclass(frozen=True)
class ConfigSnapshot:
    """One consistent read of every configuration table."""

    networks: dict[str, Network] = field(default_factory=dict)  # by postback key hash
    # by the hash of the key the last rotation replaced, while it is still accepted
    previous_keys: dict[str, Network] = field(default_factory=dict)
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    pixels: dict[str, Pixel] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # pixel id -> encrypted token
    customs: dict[str, list[CustomConversion]] = field(default_factory=dict)  # by campaign
    postbacks: dict[str, OutboundPostback] = field(default_factory=dict)
    versions: tuple[Any, ...] = ()
    # The networks every campaign allows, or None while no campaign names its networks.
    welcome_everywhere: frozenset[str] | None = None

    def network_for_key(self, hashes: Sequence[str], now: datetime | None = None) -> Network | None:
        """The network whose current key, or previous key still in its grace period, has
        one of these keyed hashes (`KeyRing.keyed_hashes` of the presented key)."""
        for key_hash in hashes:
            if (found := self.networks.get(key_hash)) is not None:
                return found
        for key_hash in hashes:
            found = self.previous_keys.get(key_hash)
            until = found.previous_key_valid_until if found else None
            if found is not None and until is not None and (now or datetime.now(UTC)) < until:
                return found
        return None

    def restricts(self, network_id: str) -> bool:
        """Whether some campaign does not allow this network: only then does accepting its
        postback need the click's campaign."""
        welcome = self.welcome_everywhere
        return welcome is not None and network_id not in welcome

    def campaign_pixels(self, campaign_id: str) -> list[Pixel]:
        return [p for p in self.pixels.values() if p.campaign_id == campaign_id]

    def campaign_postbacks(self, campaign_id: str) -> list[OutboundPostback]:
        return [p for p in self.postbacks.values() if p.campaign_id == campaign_id]


def _welcome_everywhere(campaigns: list[Campaign]) -> frozenset[str] | None:
    bound = [frozenset(c.allowed_networks) for c in campaigns if c.allowed_networks]
    return frozenset.intersection(*bound) if bound else None


def _group(items: list[CustomConversion]) -> dict[str, list[CustomConversion]]:
    grouped: dict[str, list[CustomConversion]] = {}
    for item in items:
        grouped.setdefault(item.campaign_id, []).append(item)
    return grouped


class ConfigCache:
    """A snapshot of the configuration tables, reloaded when they change."""

    def __init__(
        self, store: ConfigStore, refresh_s: float = 2.0, sole_writer: bool = False
    ) -> None:
        self._store = store
        self.refresh_s = refresh_s
        # `relay up`: every configuration write goes through this process and invalidates.
        self.sole_writer = sole_writer
        self._snapshot: ConfigSnapshot | None = None
        self._checked_at = 0.0
        self._checked_wall = 0.0
        # Every write through this process bumps the generation; a snapshot is current only
        # when it was loaded at the latest one. (A flag cleared when a reload began let
        # readers take the old snapshot while the reload ran: a token fixed a moment before
        # a redelivery was sent as it was before the fix.)
        self._generation = 1
        self._loaded = 0  # the generation the snapshot was loaded at
        self._lock = threading.Lock()

    @property
    def age_s(self) -> float:
        """Seconds since the snapshot was last confirmed current (for metrics and readiness)."""
        return time.monotonic() - self._checked_at if self._snapshot else float("inf")

    def invalidate(self) -> None:
        """A write went through this process: every read from now on sees it."""
        self._generation += 1

    @property
    def _stale(self) -> bool:
        """A write went through this process since the snapshot was loaded (or none is)."""
        return self._snapshot is None or self._loaded != self._generation

    def _fresh(self) -> bool:
        return not self._stale and self.age_s < self.refresh_s

    def snapshot(self) -> ConfigSnapshot:
        """Blocking: the current snapshot, checked against the store when it is due."""
        current = self._snapshot
        if current is not None and self._fresh():
            return current
        if current is not None and not self._stale:
            # Due for a check: one caller checks, the others keep the snapshot they have.
            if not self._lock.acquire(blocking=False):
                return current
        else:
            self._lock.acquire()
            if self._snapshot is not None and self._fresh():  # reloaded while this waited
                self._lock.release()
                return self._snapshot
        try:
            return self._refresh()
        finally:
            self._lock.release()

    def reload_on_miss(self) -> ConfigSnapshot:
        """Blocking: after a lookup missed, check the store unless it was just checked.
        Concurrent misses wait for one check rather than answer from the snapshot it
        replaces (a new network's first postbacks, arriving together, were refused)."""
        seen = self._checked_at
        if self.age_s < min(self.refresh_s, 1.0):
            return self.snapshot()
        with self._lock:
            if self._checked_at == seen:  # no check finished while this one waited
                return self._refresh()
        return self.snapshot()

    def snapshot_since(self, wall_time: float) -> ConfigSnapshot:
        """Blocking: a snapshot that holds every change made before `wall_time` (a
        conversion's receipt), so a pixel created just before a postback is planned."""
        if self.sole_writer or self._checked_wall >= wall_time:
            return self.snapshot()
        with self._lock:
            if self._checked_wall < wall_time:
                self._checked_at = 0.0
                return self._refresh()
        return self.snapshot()

    async def current_since(self, wall_time: float) -> ConfigSnapshot:
        """`snapshot_since` without leaving the event loop when nothing is due."""
        if self.sole_writer or self._checked_wall >= wall_time:
            return await self.current()
        return await asyncio.to_thread(self.snapshot_since, wall_time)

    async def current(self) -> ConfigSnapshot:
        """The snapshot without leaving the event loop when nothing is due."""
        current = self._snapshot
        if current is not None and self._fresh():
            return current
        return await asyncio.to_thread(self.snapshot)

    async def after_miss(self) -> ConfigSnapshot:
        return await asyncio.to_thread(self.reload_on_miss)

    async def campaign(self, campaign_id: str) -> Campaign | None:
        """The live campaign, reloading once if it is not (yet) known here."""
        found = (await self.current()).campaigns.get(campaign_id)
        if found is None:
            found = (await self.after_miss()).campaigns.get(campaign_id)
        return found

    def _refresh(self) -> ConfigSnapshot:
        """Reload (or confirm) the snapshot; holds `_lock`. The generation is read before
        the store: a write that lands during the reload leaves the snapshot stale."""
        generation = self._generation
        started = time.time()
        versions = self._store.table_versions(_VERSIONED)
        current = self._snapshot
        if current is None or self._loaded != generation or versions != current.versions:
            current = self._load(versions)
            self._snapshot = current
        self._loaded = generation
        self._checked_at = time.monotonic()
        self._checked_wall = started
        return current

    def _load(self, versions: tuple[Any, ...]) -> ConfigSnapshot:
        store = self._store
        pixels = store.pixels_with_tokens()
        networks = store.find(Network)
        campaigns = store.find(Campaign)
        return ConfigSnapshot(
            networks={n.postback_key_hash: n for n in networks if n.postback_key_hash},
            previous_keys={n.previous_key_hash: n for n in networks if n.previous_key_hash},
            campaigns={c.id: c for c in campaigns},
            pixels={p.id: p for p, _ in pixels},
            tokens={p.id: sealed for p, sealed in pixels},
            customs=_group(store.find(CustomConversion)),
            postbacks={p.id: p for p in store.find(OutboundPostback)},
            versions=versions,
            welcome_everywhere=_welcome_everywhere(campaigns),
        )
