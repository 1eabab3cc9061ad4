"""Temporal search attributes of conversion workflows: IDs and the delivery state only,
never personal data. `relay up` registers them on its dev server (`--search-attribute`),
`relay migrate` on a cluster; the API starts workflows with them only if they are there.

In the Temporal UI: `ClickId = "..."`, `DeliveryState = "failed"`,
`CampaignId = "..." AND DeliveryState IN ("failed", "partial")`.
"""

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from relay.domain.delivery_states import DeliveryState
from relay.domain.models import Conversion

log = logging.getLogger(__name__)

CLICK_ID = SearchAttributeKey.for_keyword("ClickId")
CAMPAIGN_ID = SearchAttributeKey.for_keyword("CampaignId")
NETWORK_ID = SearchAttributeKey.for_keyword("NetworkId")
EVENT_TYPE = SearchAttributeKey.for_keyword("EventType")
DELIVERY_STATE = SearchAttributeKey.for_keyword("DeliveryState")
KEYS = (CLICK_ID, CAMPAIGN_ID, NETWORK_ID, EVENT_TYPE, DELIVERY_STATE)


class SearchAttributesRefused(RuntimeError):
    """The cluster would not register them (Temporal Cloud: no operator API)."""


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` arguments that register every key."""
    return [f for key in KEYS for f in ("--search-attribute", f"{key.name}=Keyword")]


def at_start(conversion: Conversion) -> TypedSearchAttributes:
    """What a conversion's workflow starts with (its campaign is known after its first
    step, which upserts it)."""
    c = conversion
    return by_ids(c.click_id, c.network_id, c.event_type, c.campaign_id)


def by_ids(
    click_id: str, network_id: str, event_type: str, campaign_id: str
) -> TypedSearchAttributes:
    """A conversion's IDs, pending: what its workflow, or a redelivery of it, starts with."""
    pairs = [
        SearchAttributePair(CLICK_ID, click_id),
        SearchAttributePair(NETWORK_ID, network_id),
        SearchAttributePair(EVENT_TYPE, event_type),
        SearchAttributePair(DELIVERY_STATE, DeliveryState.PENDING.value),
    ]
    if campaign_id:
        pairs.append(SearchAttributePair(CAMPAIGN_ID, campaign_id))
    return TypedSearchAttributes(pairs)


async def missing(client: Client, namespace: str) -> list[str]:
    """The keys the namespace does not have yet."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return [k.name for k in KEYS if k.name not in listed.custom_attributes]


async def available(client: Client, namespace: str) -> bool:
    """Whether workflows can carry the attributes; warns once if not."""
    try:
        absent = await missing(client, namespace)
    except RPCError as exc:
        log.warning(
            "cannot list the search attributes of namespace %s (%s); conversions are started "
            "without them",
            namespace,
            exc.message,
        )
        return False
    if absent:
        log.warning(
            "namespace %s lacks the search attributes %s: conversions are started without "
            "them and cannot be searched by click ID or delivery state; run `relay migrate`",
            namespace,
            ", ".join(absent),
        )
    return not absent


def _manual_steps(namespace: str, names: list[str]) -> str:
    cli = " ".join(f"--name {n} --type Keyword" for n in names)
    return (
        f"register them by hand: on Temporal Cloud in the namespace's settings (Search "
        f"Attributes) or with `tcld namespace search-attributes add`; on a self-hosted "
        f"cluster with `temporal operator search-attribute create --namespace {namespace} "
        f"{cli}` (all of type Keyword)"
    )


async def register(client: Client, namespace: str) -> list[str]:
    """Add the keys the namespace lacks (idempotent); the names added."""
    absent: list[str] = []
    try:
        absent = await missing(client, namespace)
        if absent:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=namespace,
                    search_attributes={
                        name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in absent
                    },
                )
            )
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:  # registered meanwhile by another
            return absent
        names = [k.name for k in KEYS]
        raise SearchAttributesRefused(
            f"the cluster refused to register search attributes ({exc.status.name}: "
            f"{exc.message}); {_manual_steps(namespace, names)}"
        ) from exc
    return absent
