"""The final table of `bench.relay_up`: each figure, its reference, ratio, target, verdict."""

from dataclasses import dataclass

from bench.relay_phases import BurstRun, EndToEnd, Ingest

RSS_LIMIT_MB = 1024


@dataclass
class Row:
    figure: str
    relay: str
    reference: str = "-"
    ratio: str = "-"
    target: str = "-"
    verdict: bool | None = None  # None: reported, no target


def _f(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _count(value: int) -> str:
    return "n/a" if value < 0 else f"{value:,}"


def end_to_end_rows(e: EndToEnd) -> list[Row]:
    ref = e.reference
    rate = e.per_second
    ratio = rate / ref.per_second if rate else None
    n = e.count
    return [
        Row(
            "(a) delivered/s, 20 in flight",
            _f(rate),
            _f(ref.per_second),
            f"{_f(ratio, 2)}x",
            ">= 1.0x",
            ratio is not None and ratio >= 1.0,
        ),
        Row("(a) seconds, first postback to last delivery", _f(e.seconds), _f(ref.seconds)),
        Row(
            "(a) delivered to both pixels",
            f"{min(e.delivered, n)}/{n}",
            f"{ref.delivered}/{n}",
            target="all",
            verdict=e.delivered >= n and ref.delivered >= n,
        ),
        Row("(a) extra success rows (sent twice)", _count(e.extra_rows)),
        Row(
            "(a) postbacks answered accepted/existing",
            f"{e.answers.answered}/{n}",
            target="all",
            verdict=e.answers.answered == n,
        ),
    ]


def ingest_rows(i: Ingest) -> list[Row]:
    r, b = i.relay, i.bare
    ratio = r.accepted_per_s / b.accepted_per_s if b.accepted_per_s else None
    return [
        Row(
            "(b) accepted/s, wrk -t2 -c50",
            _f(r.accepted_per_s, 0),
            _f(b.accepted_per_s, 0),
            f"{_f(ratio, 3)}x",
            ">= 0.25x",
            ratio is not None and ratio >= 0.25,
        ),
        Row("(b) p50 latency ms", _f(r.p50_ms), _f(b.p50_ms)),
        Row(
            "(b) p99 latency ms",
            _f(r.p99_ms),
            _f(b.p99_ms),
            target="<= 50 ms",
            verdict=r.p99_ms <= 50,
        ),
        Row("(b) max latency ms", _f(r.max_ms), _f(b.max_ms)),
        Row(
            "(b) requests answered",
            f"{sum(r.statuses.values()):,}",
            f"{sum(b.statuses.values()):,}",
        ),
        Row("(b) non-2xx answers", _statuses(r.statuses) or "0", _statuses(b.statuses) or "0"),
        Row("(b) no answer (socket errors, timeouts)", str(r.socket_errors), str(b.socket_errors)),
    ]


def _statuses(statuses: dict[str, int]) -> str:
    return " ".join(f"{code}:{n}" for code, n in sorted(statuses.items()) if code[0] != "2")


def burst_rows(phase: str, run: BurstRun, outage_s: float | None) -> list[Row]:
    b = run.burst
    n = b.total
    p = f"({phase})"
    rows = [
        Row(
            f"{p} seconds to accept all {n:,}",
            _f(b.seconds),
            ratio=f"{n / b.seconds:,.0f}/s" if b.seconds else "-",
        ),
        Row(
            f"{p} seconds to deliver all (from first postback)",
            _f(run.deliver_seconds),
            ratio=f"{n / run.deliver_seconds:,.1f}/s" if run.deliver_seconds else "-",
        ),
        Row(
            f"{p} answered accepted/existing",
            f"{b.answered:,}/{n:,}",
            target="all",
            verdict=b.answered == n,
        ),
        Row(
            f"{p} unanswered / other final answers",
            f"{b.unanswered} / {b.failed}",
            target="0 / 0",
            verdict=b.unanswered == 0 and b.failed == 0,
        ),
        Row(
            f"{p} timeouts / errors (resent)",
            f"{b.resent_timeout} / {b.resent_error}",
            target="0 / 0" if phase == "c" else "-",
            verdict=(b.resent_timeout + b.resent_error == 0) if phase == "c" else None,
        ),
        Row(f"{p} 503 Retry-After (resent)", str(b.resent_503)),
        Row(
            f"{p} answer latency p50 / p99 / max s",
            f"{b.percentile_ms(50) / 1000:.2f} / {b.percentile_ms(99) / 1000:.2f} / "
            f"{b.max_latency_s:.2f}",
        ),
        Row(
            f"{p} delivered to both pixels (lost)",
            f"{min(run.delivered, n):,} ({run.lost})",
            target="all (0)",
            verdict=run.lost == 0 and run.delivered >= n,
        ),
        Row(f"{p} extra success rows (sent twice)", _count(run.extra_rows)),
        Row(
            f"{p} peak RSS relay up MB",
            _f(run.relay_rss_mb, 0),
            target=f"<= {RSS_LIMIT_MB}",
            verdict=run.relay_rss_mb is not None and run.relay_rss_mb <= RSS_LIMIT_MB,
        ),
        Row(
            f"{p} peak RSS its temporal dev server MB",
            _f(run.temporal_rss_mb, 0),
            target=f"<= {RSS_LIMIT_MB}",
            verdict=run.temporal_rss_mb is not None and run.temporal_rss_mb <= RSS_LIMIT_MB,
        ),
    ]
    if outage_s is not None:
        at = "not triggered" if run.outage_at_s is None else f"at {run.outage_at_s:.1f} s"
        rows += [
            Row(f"{p} Temporal SIGSTOPped {outage_s:g} s", at),
            Row(
                f"{p} answered 200 within 1 s (1st try)",
                f"{b.within_1s:,}/{n:,}",
                target="all",
                verdict=b.within_1s == n,
            ),
            Row(
                f"{p} max answer latency s",
                _f(b.max_latency_s, 2),
                target="<= 1",
                verdict=b.max_latency_s <= 1.0,
            ),
            Row(f"{p} SIGCONT until all delivered s", _f(run.after_resume_s)),
        ]
    return rows


def print_table(rows: list[Row]) -> None:
    head = ("figure", "relay up", "reference", "ratio", "target", "result")
    widths = [max(len(head[0]), *(len(r.figure) for r in rows)) if rows else 10, 18, 12, 10, 10]
    line = f"{head[0]:<{widths[0]}}  {head[1]:>{widths[1]}}  {head[2]:>{widths[2]}}  "
    print(line + f"{head[3]:>{widths[3]}}  {head[4]:<{widths[4]}}  {head[5]}")
    for r in rows:
        verdict = "-" if r.verdict is None else ("PASS" if r.verdict else "FAIL")
        print(
            f"{r.figure:<{widths[0]}}  {r.relay:>{widths[1]}}  {r.reference:>{widths[2]}}  "
            f"{r.ratio:>{widths[3]}}  {r.target:<{widths[4]}}  {verdict}"
        )
