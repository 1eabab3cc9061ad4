"""docker-compose.yml sets only real settings, and each Relay role gets what it needs."""

from pathlib import Path
from typing import Any

import yaml

from relay.settings import Settings

COMPOSE = Path(__file__).parent.parent / "docker-compose.yml"
KNOWN = {f"RELAY_{name.upper()}" for name in Settings.model_fields}
REQUIRED = {
    "RELAY_TEMPORAL_ADDRESS",
    "RELAY_CLICKHOUSE_URL",
    "RELAY_ENCRYPTION_KEY",
    "RELAY_ADMIN_TOKEN",
}


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_every_relay_variable_is_a_setting() -> None:
    for name, service in _services().items():
        for variable in service.get("environment", {}):
            if variable.startswith("RELAY_"):
                assert variable in KNOWN, f"{name} sets {variable}, which Relay does not read"


def test_api_and_worker_get_the_distributed_settings() -> None:
    services = _services()
    assert services["relay-api"]["command"] == ["relay", "api"]
    assert services["relay-worker"]["command"] == ["relay", "worker"]
    for role in ("relay-api", "relay-worker"):
        assert set(services[role]["environment"]) >= REQUIRED
        assert services[role]["environment"]["RELAY_CLICKHOUSE_URL"].startswith("http")
        assert set(services[role]["depends_on"]) >= {"temporal", "clickhouse"}
    # The schema and the search attributes are in place before the API starts conversions.
    assert services["relay-migrate"]["command"] == ["relay", "migrate"]
    migrated = services["relay-api"]["depends_on"]["relay-migrate"]
    assert migrated == {"condition": "service_completed_successfully"}
    for name in ("postgresql", "temporal", "clickhouse", "relay-api"):
        assert "healthcheck" in services[name], f"{name} has no health check"


def test_the_api_keeps_its_inbox_on_a_volume() -> None:
    api = _services()["relay-api"]
    data_dir = api["environment"]["RELAY_DATA_DIR"]
    volume, _, mounted_at = api["volumes"][0].partition(":")
    assert mounted_at == data_dir
    assert volume in yaml.safe_load(COMPOSE.read_text())["volumes"]
