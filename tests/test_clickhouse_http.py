"""The ClickHouse HTTP stand-in (`tests.clickhouse_http`) as clickhouse-connect sees it: the
connect handshake, inserts (compressed or not), bound parameters (in the URL and, when large,
as a form), sessions, and ClickHouse's errors and authentication refusal."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.distributed import ClickHouseHttp


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseHttp]:
    path = tmp_path_factory.mktemp("clickhouse-http")
    with ClickHouseHttp(path / "data", path / "server.log") as running:
        yield running


@pytest.mark.parametrize("compress", [True, False])
def test_insert_and_query_round_trip(server: ClickHouseHttp, compress: bool) -> None:
    client = clickhouse_connect.get_client(dsn=server.dsn, compress=compress)
    table = f"t_{int(compress)}"
    client.command(
        f"CREATE TABLE {table} (id String, n UInt32, at DateTime64(3, 'UTC'), "
        "tags Array(String), p Nullable(Decimal(18, 6))) ENGINE = MergeTree ORDER BY id"
    )
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    rows = [[f"id{i}", i, at, ["a", "b"][: i % 3], None if i % 2 else 1.5] for i in range(500)]
    summary = client.insert(table, rows, column_names=["id", "n", "at", "tags", "p"])
    assert summary.written_rows == 500
    ids = [f"id{i}" for i in range(0, 500, 7)] * 200  # past the URL limit: a form body
    found = client.query(
        f"SELECT id, n, at, tags FROM {table} WHERE id IN {{ids:Array(String)}} "
        "AND n >= {low:UInt32} ORDER BY n",
        parameters={"ids": ids, "low": 7},
    )
    assert found.result_rows[0] == ("id7", 7, at.replace(tzinfo=None), ["a"])
    assert len(found.result_rows) == len(range(7, 500, 7))
    assert client.command(f"SELECT count() FROM {table}") == 500
    assert client.command(f"SELECT id FROM {table} WHERE n > 1000") == ""  # a result, empty
    client.close()


def test_sessions_keep_use_and_settings_of_their_own(server: ClickHouseHttp) -> None:
    client = clickhouse_connect.get_client(dsn=server.dsn)
    client.command("CREATE DATABASE IF NOT EXISTS other")
    client.command("USE other")
    assert client.command("SELECT currentDatabase()") == "other"
    fresh = clickhouse_connect.get_client(dsn=server.dsn)
    assert fresh.command("SELECT currentDatabase()") == "default"
    setting = "SELECT value FROM system.settings WHERE name = 'max_threads'"
    assert fresh.command(setting, settings={"max_threads": 3}) == 3
    assert fresh.command(setting) != 3  # a query's setting is for that query only


def test_errors_carry_clickhouse_code_and_status(server: ClickHouseHttp) -> None:
    client = clickhouse_connect.get_client(dsn=server.dsn)
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE") as raised:
        client.query("SELECT * FROM no_such_table")
    assert raised.value.code == 60
    answer = httpx.post(server.url, content=b"SELEC 1", auth=(server.user, server.password))
    assert answer.status_code == 400
    assert answer.headers["X-ClickHouse-Exception-Code"] == "62"
    assert answer.text.startswith("Code: 62. DB::Exception:")
    assert httpx.get(f"{server.url}/ping").text == "Ok.\n"


def test_a_wrong_password_is_refused(server: ClickHouseHttp) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with pytest.raises(DatabaseError, match="AUTHENTICATION_FAILED"):
        clickhouse_connect.get_client(host=host, port=int(port), username="relay", password="x")
    answer = httpx.post(server.url, content=b"SELECT 1")
    assert (answer.status_code, answer.headers["X-ClickHouse-Exception-Code"]) == (403, "516")


def test_data_survives_a_restart_on_the_same_dir(tmp_path: Path) -> None:
    for expected in (0, 1):
        with ClickHouseHttp(tmp_path / "data", tmp_path / "server.log") as running:
            client = clickhouse_connect.get_client(dsn=running.dsn)
            client.command(
                "CREATE TABLE IF NOT EXISTS kept (n UInt8) ENGINE = MergeTree ORDER BY n"
            )
            assert client.command("SELECT count() FROM kept") == expected
            client.insert("kept", [[1]], column_names=["n"])
            client.close()
