"""`python -m relay.health`, the health check's name before the process modules moved to
relay/process/: orchestrators configured with it keep working (relay/process/health.py)."""

from relay.process.health import main

if __name__ == "__main__":
    main()
