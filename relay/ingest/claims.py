"""Dedup claims shared by several API replicas, each with its own inbox.

One inbox decides race-free among its own postbacks; across replicas, Temporal's workflow-ID
uniqueness (linearizable) is the arbiter: the claim is a `DedupClaimWorkflow` whose ID names
the (network, event, txid) or the (click, event) and whose memo names the conversion holding
it. The forwarder takes the claims just before it starts the conversion's workflow, so the
first postback forwarded wins. The embedded default (`relay up`, one inbox) needs none.
Which claims a conversion takes, and what their holders mean, is relay/conversions/dedup.py's.
"""

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from relay.conversions import dedup
from relay.core.ids import click_claim_id, txid_claim_id
from relay.domain.workflow_io import CLAIM_WORKFLOW, ClaimInput, ConversionInput


async def claim(client: Client, task_queue: str, claim_id: str, holder: str) -> str:
    """Take the claim for `holder`, or return the conversion ID that holds it. A holder is
    always in some replica's durable inbox, so a claim is never orphaned."""
    try:
        await client.start_workflow(
            CLAIM_WORKFLOW,
            ClaimInput(conversion_id=holder),
            id=claim_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            memo={"conversion_id": holder},
        )
        return holder
    except WorkflowAlreadyStartedError:
        description = await client.get_workflow_handle(claim_id).describe()
    return str(await description.memo_value("conversion_id"))


async def temporal_claims(
    client: Client, task_queue: str, input: ConversionInput
) -> ConversionInput:
    """The input with the holders Temporal names for its transaction ID and its click."""
    conversion = input.conversion
    me = conversion.conversion_id
    txid_holder = ""
    if dedup.binds_txid(conversion.txid):
        claim_id = txid_claim_id(conversion.network_id, conversion.event_type, conversion.txid)
        txid_holder = await claim(client, task_queue, claim_id, me)
    holder = ""
    if dedup.takes_click_claim(conversion.event_type):
        claim_id = click_claim_id(conversion.click_id, conversion.event_type)
        holder = await claim(client, task_queue, claim_id, me)
    return input.model_copy(update={"claim_holder": holder, "txid_holder": txid_holder})
