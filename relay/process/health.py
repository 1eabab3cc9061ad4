"""`python -m relay.process.health`: exit 0 if `relay worker`'s health file is fresh (touched within
three heartbeats), else print why and exit 1. For orchestrators' health checks; it reads
the same settings as the worker (RELAY_WORKER_HEALTH_FILE or RELAY_DATA_DIR,
RELAY_WORKER_HEARTBEAT_S)."""

import sys
import time

from relay.core.settings import Settings

MISSED_BEATS = 3


def worker_health(settings: Settings) -> str | None:
    """None when healthy, else the reason."""
    path = settings.worker_health_path
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return f"no worker health file at {path} (the worker is not running or not polling)"
    limit = MISSED_BEATS * settings.worker_heartbeat_s
    if age > limit:
        return f"worker health file {path} is {age:.0f} s old (limit {limit:.0f} s)"
    return None


def main() -> None:
    problem = worker_health(Settings())
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        raise SystemExit(1)
    print("healthy")


if __name__ == "__main__":
    main()
