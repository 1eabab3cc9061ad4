"""Accepting a postback: identify the conversion, apply dedup, start its workflow.

The answer is returned only after Temporal has durably recorded the workflow start.
Dedup that must hold under concurrency uses Temporal's workflow-ID uniqueness
(`DedupClaimWorkflow`), with ClickHouse as the memory that outlives Temporal's retention.
"""

import asyncio
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from relay.errors import Unauthorized, Unavailable
from relay.ids import click_claim_id, conversion_id, txid_claim_id
from relay.models import Campaign, Click, Conversion, Network
from relay.platforms.event_names import is_reversal, normalize_event_type
from relay.platforms.normalize import hash_user_identifiers
from relay.postback_params import PostbackParams
from relay.runtime import Runtime
from relay.store.pool import STORE_ERRORS
from relay.store.rows import utc_now
from relay.workflow_io import ClaimInput, ConversionInput
from workflows.conversion import ConversionWorkflow, DedupClaimWorkflow

log = logging.getLogger(__name__)
ORPHAN_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class PostbackAnswer:
    conversion_id: str
    status: Literal["accepted", "existing"]
    is_duplicate: bool
    attributed: bool


async def _network(runtime: Runtime, key: str) -> Network:
    networks = await asyncio.to_thread(runtime.config.find, Network)
    # Compare against every network in constant time per key: no early exit on a prefix.
    found = [n for n in networks if hmac.compare_digest(n.postback_key.encode(), key.encode())]
    if not found:
        raise Unauthorized("the postback key does not match any network", "key")
    return found[0]


async def _claim(runtime: Runtime, claim_id: str, holder: str) -> str:
    """Take the claim for `holder`, or return the conversion ID that holds it.

    A claim whose holder never became a conversion (its start failed after the claim was
    taken) is orphaned once it is older than `ORPHAN_AFTER`: then `holder` is returned, so
    the postbacks after it are not judged against a conversion that does not exist.
    """
    try:
        await runtime.temporal.start_workflow(
            DedupClaimWorkflow.run,
            ClaimInput(conversion_id=holder),
            id=claim_id,
            task_queue=runtime.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            memo={"conversion_id": holder},
        )
        return holder
    except WorkflowAlreadyStartedError:
        description = await runtime.temporal.get_workflow_handle(claim_id).describe()
    current = str(await description.memo_value("conversion_id"))
    if current == holder or await _conversion_exists(runtime, current):
        return current
    # Younger claims may belong to a start still under way in a concurrent request.
    if utc_now() - description.start_time < ORPHAN_AFTER:
        return current
    log.warning("claim %s is orphaned (%s never started); %s proceeds", claim_id, current, holder)
    return holder


async def _conversion_exists(runtime: Runtime, conversion_id_: str) -> bool:
    """Recorded in ClickHouse, or known to Temporal as a conversion workflow."""
    if await asyncio.to_thread(runtime.traffic.get_conversion, conversion_id_):
        return True
    try:
        await runtime.temporal.get_workflow_handle(conversion_id_).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _existing(runtime: Runtime, conversion_id_: str) -> PostbackAnswer:
    """The answer for a conversion that was accepted before (row or workflow memo)."""
    row = await asyncio.to_thread(runtime.traffic.get_conversion, conversion_id_)
    if row is not None:
        return PostbackAnswer(conversion_id_, "existing", row.is_duplicate, row.attributed)
    description = await runtime.temporal.get_workflow_handle(conversion_id_).describe()
    memo = await description.memo()
    return PostbackAnswer(
        conversion_id_, "existing", bool(memo.get("is_duplicate")), bool(memo.get("attributed"))
    )


def _started_now(handle: WorkflowHandle[ConversionWorkflow, object]) -> bool:
    # With USE_EXISTING the server answers `started = false` for a running workflow; the
    # SDK (1.35, the lowest version pyproject allows) keeps that response only on a private
    # attribute; test_idempotency fails if a new SDK moves it.
    response = getattr(handle, "_start_workflow_response", None)
    return bool(getattr(response, "started", True))


def _attributed(click: Click | None, campaign: Campaign | None, received_at: datetime) -> bool:
    """A known click of a live campaign, within the campaign's attribution window."""
    if click is None or campaign is None:
        return False
    return received_at - click.clicked_at <= timedelta(days=campaign.attribution_window_days)


async def _is_duplicate(
    runtime: Runtime, conv_id: str, click: Click | None, campaign: Campaign | None, event: str
) -> bool:
    if click is None or (campaign is not None and event in campaign.repeatable_events):
        return False
    original = await asyncio.to_thread(
        runtime.traffic.original_for_click_event, click.click_id, event
    )
    if original is not None:
        return original != conv_id
    return await _claim(runtime, click_claim_id(click.click_id, event), conv_id) != conv_id


async def accept_postback(runtime: Runtime, params: PostbackParams) -> PostbackAnswer:
    """Record the postback as a conversion workflow and answer once Temporal has it.

    If Temporal or ClickHouse does not answer, the caller gets a 503 and resends: nothing
    was accepted, so nothing is lost."""
    try:
        return await _accept(runtime, params)
    except RPCError as exc:
        raise Unavailable(f"Temporal did not accept the conversion: {exc.message}") from exc
    except STORE_ERRORS as exc:
        raise Unavailable(f"ClickHouse did not answer ({type(exc).__name__})") from exc


async def _accept(runtime: Runtime, params: PostbackParams) -> PostbackAnswer:
    network = await _network(runtime, params.key)
    event = normalize_event_type(params.event)
    conv_id = conversion_id(params.click_id, event, params.txid)
    if await asyncio.to_thread(runtime.traffic.get_conversion, conv_id):
        return await _existing(runtime, conv_id)
    if params.txid:
        known = await asyncio.to_thread(
            runtime.traffic.conversion_for_txid, network.id, event, params.txid
        )
        holder = known or await _claim(
            runtime, txid_claim_id(network.id, event, params.txid), conv_id
        )
        if holder != conv_id:
            return await _existing(runtime, holder)
    click = await asyncio.to_thread(runtime.traffic.get_click, params.click_id)
    campaign = (
        await asyncio.to_thread(runtime.config.get, Campaign, click.campaign_id) if click else None
    )
    received_at = utc_now()
    attributed = _attributed(click, campaign, received_at)
    # A reversal is recorded against the conversions it reverses; it is never a duplicate.
    reversal = is_reversal(event)
    duplicate = (
        attributed
        and not reversal
        and await _is_duplicate(runtime, conv_id, click, campaign, event)
    )
    hashes = hash_user_identifiers(
        params.email,
        params.phone,
        params.external_id or (click.external_id if click else None) or None,
        (click.country or None) if click else None,
    )
    conversion = Conversion(
        conversion_id=conv_id,
        click_id=params.click_id,
        campaign_id=click.campaign_id if click else "",
        network_id=network.id,
        event_type=event,
        payout=params.payout,
        currency=params.currency
        or (campaign.currency if campaign else None)
        or runtime.settings.default_currency,
        txid=params.txid or "",
        email_sha256=hashes.email or "",
        phone_meta_sha256=hashes.phone_meta or "",
        phone_tiktok_sha256=hashes.phone_tiktok or "",
        external_id_sha256=hashes.external_id or "",
        pii_dropped=list(hashes.dropped),
        is_duplicate=duplicate,
        attributed=attributed,
        received_at=received_at,
    )
    try:
        handle = await runtime.temporal.start_workflow(
            ConversionWorkflow.run,
            ConversionInput(conversion=conversion),
            id=conv_id,
            task_queue=runtime.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            memo={"is_duplicate": duplicate, "attributed": attributed},
            static_summary=f"{event} on click {params.click_id}",
        )
    except WorkflowAlreadyStartedError:
        return await _existing(runtime, conv_id)
    if not _started_now(handle):
        return await _existing(runtime, conv_id)
    return PostbackAnswer(conv_id, "accepted", duplicate, attributed)
