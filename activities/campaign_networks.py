"""A campaign's allowed networks, applied by the conversion's first step (activities/prepare.py)
to the postbacks accepting could not check: their click could not be read then
(relay/ingest/accept.py refuses the others with 403).

A postback from a network the click's campaign does not allow is recorded refused: kept and
shown (unattributed, with its `refusal`), never counted for its click, never sent. A refused
conversion that took its click's dedup claim first (the inbox's, or Temporal's across API
replicas) does not make the allowed network's conversion a duplicate.
"""

from activities.attempts import store_call
from relay.domain.models import Campaign, Conversion
from relay.domain.workflow_io import ConversionInput, Prepared
from relay.store.traffic import ConversionMemory, TrafficStore

NOT_ALLOWED = "network not allowed for campaign"


async def bind_to_campaign(
    traffic: TrafficStore,
    input: ConversionInput,
    conversion: Conversion,
    campaign: Campaign | None,
    memory: ConversionMemory,
) -> Conversion:
    """The decided conversion (`prepare.decide`) as it is recorded under the campaign's
    allowed networks: refused, or counted although a refused one claimed its click first."""
    if campaign is None or not campaign.allowed_networks:
        return conversion
    if not campaign.allows(conversion.network_id):
        update = {"attributed": False, "is_duplicate": False, "refusal": NOT_ALLOWED}
        return conversion.model_copy(update=update)
    me = conversion.conversion_id
    holder = input.claim_holder
    counted_before = memory.original is not None  # refused rows are not originals
    resent = input.txid_holder not in ("", me) or memory.same_txid is not None
    if not conversion.is_duplicate or counted_before or resent or holder in ("", me):
        return conversion
    # Held a duplicate by the claim alone: counted if the claim's holder was refused. A
    # holder not recorded yet leaves it a duplicate (never counted twice).
    claimed_by = await store_call(traffic.get_conversion, holder)
    if claimed_by is None or not claimed_by.refusal:
        return conversion
    return conversion.model_copy(update={"is_duplicate": False})


def with_refusal(prepared: Prepared) -> Prepared:
    """The plan of a refused conversion says why nothing is sent."""
    if prepared.conversion.refusal and not prepared.recorded_by_earlier_run:
        prepared.skipped = prepared.conversion.refusal
    return prepared
