"""`relay redeliver` (issue 22 item 6): conversion IDs as arguments, --dry-run, --failed
needing --since or --all, unknown IDs as errors. The command runs as a user runs it, against
a served API."""

import argparse
import asyncio
import os
import sys

import pytest
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.process.cli_help import build_parser
from relay.process.cli_redeliver import check_request
from relay.store.pool import ClickHouse
from tests.harness import ADMIN_TOKEN, failed_conversions, meta_event_ids, running_relay
from tests.platform_server import PlatformServer
from tests.served import serving


def _args(*argv: str) -> argparse.Namespace:
    return build_parser(None).parse_args(["redeliver", *argv])


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--failed"], "add --since"),
        (["--state", "failed", "--campaign", "cmp_x"], "add --since"),
        (["--failed", "--since", "1h", "--all"], "not both"),
        (["conv_a", "--failed", "--since", "1h"], "conversion IDs or a filter"),
        ([], "say which conversions"),
        (["--follow", "bulk_x", "conv_a"], "--follow ID takes no"),
    ],
)
def test_unclear_or_unbounded_requests_are_refused(argv: list[str], said: str) -> None:
    with pytest.raises(SystemExit) as refused:
        check_request(_args(*argv))
    assert said in str(refused.value.code)


@pytest.mark.parametrize(
    "argv",
    [
        ["--failed", "--since", "24h"],
        ["--failed", "--all"],
        ["--state", "partial", "--all", "--dry-run"],
        ["conv_a", "conv_b", "--dry-run"],
        ["--follow", "bulk_x"],
    ],
)
def test_clear_requests_pass(argv: list[str]) -> None:
    check_request(_args(*argv))
    assert _args("conv_a", "conv_b").conversions == ["conv_a", "conv_b"]


async def _cli(url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "RELAY_PUBLIC_URL": url, "RELAY_ADMIN_TOKEN": ADMIN_TOKEN}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay",
        "redeliver",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_redeliver_by_id_dry_run_and_unknown_ids(
    dev_env: WorkflowEnvironment, clickhouse: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> None:
    async with (
        running_relay(dev_env, clickhouse, platforms, keys) as relay,
        serving(relay.runtime) as url,
    ):
        pixel, ids = await failed_conversions(relay, 2)
        campaign = pixel["campaign_id"]
        sent = len(meta_event_ids(relay, pixel))

        # Dry runs say what would be done and send nothing.
        code, out, err = await _cli(url, "--failed", "--all", "--campaign", campaign, "--dry-run")
        assert code == 0, err
        assert "would redeliver 2 conversions; nothing started" in out
        code, out, err = await _cli(url, *ids, "--dry-run")
        assert code == 0, err
        for conversion_id in ids:
            assert f"{conversion_id}: would redeliver pixel {pixel['id']}" in out
        assert "dry run: nothing started" in out
        assert len(meta_event_ids(relay, pixel)) == sent

        # Unknown IDs are errors naming them, and nothing starts.
        code, out, err = await _cli(url, ids[0], "conv_not_there")
        assert code == 1 and "no conversion 'conv_not_there'" in err, (out, err)
        code, out, err = await _cli(url, "--failed", "--all", "--campaign", "cmp_not_there")
        assert code == 1 and "no campaign 'cmp_not_there'" in err, (out, err)
        assert "conversions" not in out
        code, out, err = await _cli(url, "--failed", "--since", "1h", "--network", "net_nope")
        assert code == 1 and "no network 'net_nope'" in err, (out, err)
        assert len(meta_event_ids(relay, pixel)) == sent

        # By ID: one redelivery per conversion, followed to its end.
        code, out, err = await _cli(url, ids[0])
        assert code == 0, err
        assert f"{ids[0]}: delivered (now delivered)" in out, out
        requests = meta_event_ids(relay, pixel)
        assert len(requests) == sent + 1 and requests[-1] == (ids[0], 200)

        # The other one is left for the filter: exactly one conversion is still failed.
        code, out, err = await _cli(url, "--failed", "--all", "--campaign", campaign, "--dry-run")
        assert "would redeliver 1 conversions" in out, (out, err)
