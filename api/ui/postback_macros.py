"""The macros common affiliate networks and trackers fill into a postback URL, so the
Networks page can show Relay's postback URL ready to paste into each of them.

A network sends Relay's click ID back only if it received it: the buyer puts Relay's
`{click_id}` into the network's tracking link (the campaign's offer URL) under the parameter
`link_param` names, and the network returns it through the macro `click_id`.

Each entry was checked against the platform's own documentation (or, where noted, an
integration guide that quotes it); a macro that could not be confirmed is left out (None:
the parameter is not sent, and Relay uses its default), and a platform whose payout macro
could not be confirmed is not listed at all. Left out for that reason: Voluum, Binom and
ClickFlare (their traffic-source postback documents `{externalid}` for the click, but the
payout token could not be confirmed), RedTrack, Scaleo, Offer18 and Impact (not confirmed).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    slug: str  # the element IDs' suffix
    name: str
    kind: str  # "Affiliate network" or "Tracker"
    link_param: str  # where Relay's {click_id} goes in the platform's tracking link
    click_id: str
    payout: str | None
    txid: str | None
    event: str | None
    source: str  # where the macros were confirmed
    currency: str | None = None  # the payout's currency, where the platform has a macro


PLATFORMS: tuple[Platform, ...] = (
    # Everflow: partner postbacks return the tracking link's sub1..sub5 as {sub1}..{sub5}
    # (helpdesk.everflow.io/en/articles/6173403, "A Guide to Parameters and Macros";
    # developers.everflow.io/sdk/click-tracking lists sub1-sub5), the payout as {payout}
    # (an Everflow advertiser's partner guide, ourdreamaiaffiliate.com/onboarding/postbacks),
    # the event as {event_name} (mrpostback.com/everflow, Partner Postback). {transaction_id}
    # is Everflow's own click ID, the same for every event of a click: not a txid.
    Platform(
        "everflow",
        "Everflow",
        "Affiliate network",
        "sub1",
        "{sub1}",
        "{payout}",
        None,
        "{event_name}",
        "helpdesk.everflow.io/en/articles/6173403",
    ),
    # CAKE: affiliate pixel tokens #s2# (sub ID 2, "the most common parameter to pass a
    # click ID"), #price# (the payout), #leadid# (CAKE's ID of each conversion)
    # (support.getcake.com/support/solutions/articles/5000545788 and 5000546096). No event
    # token is documented there.
    Platform(
        "cake",
        "CAKE",
        "Affiliate network",
        "s2",
        "#s2#",
        "#price#",
        "#leadid#",
        None,
        "support.getcake.com/support/solutions/articles/5000545788",
    ),
    # Affise: "There is no clickid macro for Affiliate postback on Affise. Use {sub1} - {sub8}
    # macros to pass this value"; {sum} "Conversion payout", {currency} "Currency",
    # {transactionid} "Conversion identifier of the advertiser"
    # (help-center.affise.com/en/articles/6483741-affiliate-postback-url-macros). Its {goal}
    # is the offer's goal value, often a number ("1" install, "2" deposit in Affise's own
    # example): sent as the event it would be a custom event, not a sale, so no event macro.
    Platform(
        "affise",
        "Affise",
        "Affiliate network",
        "sub1",
        "{sub1}",
        "{sum}",
        "{transactionid}",
        None,
        "help-center.affise.com/en/articles/6483741-affiliate-postback-url-macros",
        currency="{currency}",
    ),
    # HasOffers / TUNE: {aff_sub} and {payout}, as Voluum's and Trackly's TUNE guides give the
    # postback (feedback.voluum.com/knowledgebase/articles/318683,
    # docs.tracklysms.com/guides/offers/tune-integration). TUNE's {transaction_id} is the
    # click's ID (AppsFlyer's TUNE guide passes it as clickid): not a txid.
    Platform(
        "tune",
        "HasOffers / TUNE",
        "Affiliate network",
        "aff_sub",
        "{aff_sub}",
        "{payout}",
        None,
        None,
        "docs.tracklysms.com/guides/offers/tune-integration",
    ),
    # Keitaro, with Relay as its traffic source: S2S postback placeholders {external_id}
    # (the traffic source's click ID), {revenue}, {tid} (transaction ID)
    # (docs.keitaro.io/en/campaigns-and-streams/s2s-postback-placeholders.html). Its status
    # needs a mapping ({status:lead=0 ...}), so no event macro.
    Platform(
        "keitaro",
        "Keitaro",
        "Tracker",
        "the traffic source's External ID parameter",
        "{external_id}",
        "{revenue}",
        "{tid}",
        None,
        "docs.keitaro.io/en/campaigns-and-streams/s2s-postback-placeholders.html",
    ),
)
