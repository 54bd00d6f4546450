"""HubSpot as a Relay CRM unit: CRM v3 API through hubspot-api-client.

Everything Relay knows about HubSpot lives in this package: the connection settings
(:mod:`.settings`), the adapter (:mod:`.adapter`, batch answers in :mod:`.results`), the
error dialect and SDK translation (:mod:`.errors`), its signed webhooks (:mod:`.webhooks`) and its
email subscription types (:mod:`.subscriptions`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from connector.adapters.errors import register_dialect
from connector.crms import AdapterOptions, CrmLimits, CrmUnit, ValueStyle, secret_text
from connector.crms.hubspot.errors import DIALECT
from connector.crms.hubspot.settings import (
    HUBSPOT_MAX_PAGE_SIZE,
    HUBSPOT_MAX_WRITE_BATCH,
    HubSpotConnection,
)
from connector.crms.hubspot.webhooks import read_webhook

if TYPE_CHECKING:
    from connector.adapters.base import CrmAdapter


def open_adapter(name: str, settings: HubSpotConnection, options: AdapterOptions) -> CrmAdapter:
    """The HubSpot adapter of connection ``name`` (sharing the portal's owners within the process, see
    ``owners_cache_seconds``)."""
    from connector.crms.hubspot.adapter import HubSpotAdapter

    return HubSpotAdapter(
        name, settings.base_url, secret_text(settings.credentials.access_token), timeout=options.timeout,
        retry=options.retry, calls=options.calls, write_batch_size=settings.write_batch_size,
        read_lag=timedelta(seconds=options.read_lag_seconds), owners_cache_seconds=options.owners_cache_seconds,
        governor=options.governor, subscription_types=options.subscription_types,
    )


register_dialect(DIALECT)

UNIT = CrmUnit(
    kind="hubspot",
    label="HubSpot",
    settings=HubSpotConnection,
    open_adapter=open_adapter,
    values=ValueStyle(text_only=True),  # every property value is a string; "" clears it
    field_word=("property", "properties"),
    creates_fields=True,  # the properties API creates Relay's custom properties
    person_kinds={"contacts": "lead"},  # Relay routes HubSpot contacts as leads (see mappings/hubspot.yaml)
    limits=CrmLimits(max_write_batch=HUBSPOT_MAX_WRITE_BATCH, max_page_size=HUBSPOT_MAX_PAGE_SIZE),
    sandbox="hubspot",
    read_webhook=read_webhook,  # v3-signed batches of events (webhooks.py)
    reads_subscription_types=True,  # hs_email_optout_<id> of consent.yaml's types (subscriptions.py)
)
