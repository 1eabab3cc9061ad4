"""The overview's charts as geometry for `_chart.html`: one small chart per series (Meta,
TikTok, outbound postbacks), stacked bars of delivered / failed / not sendable sends per
bucket, and one of conversions received. The template only writes out the numbers here, as
SVG presentation attributes (the CSP allows no inline style)."""

from dataclasses import dataclass
from datetime import UTC, timedelta

from relay.destinations.registry import PLATFORMS
from relay.store.overview import FINAL_STATES, Bucket, Unit

WIDTH, HEIGHT = 480, 160
LEFT, RIGHT, TOP, BOTTOM = 36, 6, 10, 24  # room for the axes' labels
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
BASELINE = TOP + PLOT_H
# Each platform as its destination names itself (Meta, TikTok), then outbound postbacks.
SERIES_NAMES = {
    **{p.value: d.label for p, d in PLATFORMS.items()},
    "postback": "Outbound postbacks",
}
STATE_NAMES = {state.value: state.value.capitalize() for state in FINAL_STATES}
MAX_LABELS = 8  # at most this many bucket labels under an axis


@dataclass(frozen=True)
class Segment:
    css: str  # the state's class: bar-delivered, bar-failed, bar-not-sendable, bar-conversions
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label_x: float
    label: str  # under the axis, '' for the bars between labelled ones
    title: str  # the bar's hover text
    segments: list[Segment]


@dataclass(frozen=True)
class Chart:
    key: str  # for element IDs
    name: str
    top: int  # the y axis's highest value
    bars: list[Bar]
    total: int

    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top_y: int = TOP
    baseline: int = BASELINE


def bucket_label(bucket: Bucket, unit: Unit) -> str:
    """How a bucket is named on the axis, in the workspace's timezone."""
    return f"{bucket.start:%H:%M}" if unit == "hour" else f"{bucket.start:%b %d}"


def bucket_name(bucket: Bucket, unit: Unit) -> str:
    """A bucket in full, for hover text and the table."""
    if unit == "hour":
        end = (bucket.start.astimezone(UTC) + timedelta(hours=1)).astimezone(bucket.start.tzinfo)
        return f"{bucket.start:%Y-%m-%d %H:%M %Z} to {end:%H:%M %Z}"
    return f"{bucket.start:%a %Y-%m-%d}"


def _nice_top(value: int) -> int:
    """The axis's top: the smallest of 1, 2 or 5 times 10^n at least `value` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _chart(
    key: str, name: str, buckets: list[Bucket], unit: Unit, values: list[list[tuple[str, int]]]
) -> Chart:
    """`values`: per bucket, its stack's (state, count) from the bottom up."""
    top = _nice_top(max((sum(n for _, n in stack) for stack in values), default=0))
    slot = PLOT_W / max(len(buckets), 1)
    every = -(-len(buckets) // MAX_LABELS)  # label one bucket in `every`
    bars = []
    for index, (bucket, stack) in enumerate(zip(buckets, values, strict=True)):
        y = float(BASELINE)
        segments = []
        for state, count in stack:
            height = PLOT_H * count / top
            y -= height
            css = "bar-" + state.replace(" ", "-")
            segments.append(Segment(css, round(y, 2), round(height, 2)))
        counts = ", ".join(f"{n} {state}" for state, n in stack)
        x = LEFT + index * slot
        bars.append(
            Bar(
                x=round(x + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                label_x=round(x + slot / 2, 2),
                label=bucket_label(bucket, unit) if index % every == 0 else "",
                title=f"{name}, {bucket_name(bucket, unit)}: {counts}",
                segments=[s for s in segments if s.height > 0],
            )
        )
    total = sum(n for stack in values for _, n in stack)
    return Chart(key, name, top, bars, total)


def charts(buckets: list[Bucket], unit: Unit) -> list[Chart]:
    """Conversions received, then one chart of sends per series."""
    received = [[("conversions", b.conversions)] for b in buckets]
    found = [_chart("conversions", "Conversions received", buckets, unit, received)]
    for series, name in SERIES_NAMES.items():
        stacks = [[(s.value, b.count(series, s.value)) for s in FINAL_STATES] for b in buckets]
        found.append(_chart(series, name, buckets, unit, stacks))
    return found
