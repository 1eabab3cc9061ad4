"""A campaign's allowed networks, applied by the conversion's first step (activities/prepare.py)
to the postbacks accepting could not check: their click could not be read then
(relay/ingest/accept.py refuses the others with 403).

A postback from a network the click's campaign does not allow is recorded refused: kept and
shown (unattributed, with its `refusal`), never counted for its click, never sent
(`dedup.judge`, called by `prepare.decide`). A refused conversion that took its click's dedup
claim first (the inbox's, or Temporal's across API replicas) does not make the allowed
network's conversion a duplicate: that needs the claim holder's record, read here. The rules
are relay/conversions/dedup.py's (rule 9).
"""

from activities.attempts import store_call
from relay.conversions import dedup
from relay.conversions.dedup import ConversionMemory
from relay.domain.models import Campaign, Conversion
from relay.domain.workflow_io import ConversionInput
from relay.store.traffic import TrafficStore


async def bind_to_campaign(
    traffic: TrafficStore,
    input: ConversionInput,
    conversion: Conversion,
    campaign: Campaign | None,
    memory: ConversionMemory,
) -> Conversion:
    """The decided conversion (`prepare.decide`) as it is recorded under the campaign's
    allowed networks: counted although a refused one claimed its click first."""
    holder = dedup.claim_to_recheck(input, conversion, campaign, memory)
    if holder is None:
        return conversion
    claimed_by = await store_call(traffic.get_conversion, holder)
    if not dedup.counts_despite_claim(claimed_by):
        return conversion
    return conversion.model_copy(update={"is_duplicate": False})
