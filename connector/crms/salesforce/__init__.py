"""Salesforce as a Relay CRM unit: REST API through simple-salesforce.

Everything Relay knows about Salesforce lives in this package: the connection
settings (:mod:`.settings`), the adapter (:mod:`.adapter`, with SOQL in :mod:`.soql` and
Bulk API 2.0 results in :mod:`.bulk`), the error dialect and SDK translation
(:mod:`.errors`) and the loopback transport to a plain-HTTP sandbox (:mod:`.loopback`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from connector.adapters.errors import register_dialect
from connector.crms import AdapterOptions, CrmLimits, CrmUnit, ValueStyle, secret_text
from connector.crms.salesforce.errors import DIALECT
from connector.crms.salesforce.outbound import read_webhook, reply
from connector.crms.salesforce.settings import (
    SALESFORCE_MAX_WRITE_BATCH,
    SALESFORCE_PAGE_SIZE_RANGE,
    SalesforceConnection,
)

if TYPE_CHECKING:
    from connector.adapters.base import CrmAdapter


def open_adapter(name: str, settings: SalesforceConnection, options: AdapterOptions) -> CrmAdapter:
    """The Salesforce adapter of connection ``name``.

    Adapters opened here share, within the process, the org's access token (for an hour, see
    ``TOKEN_REUSE_SECONDS``) and its user list (for the connection's ``owners_cache_seconds``):
    a worker's next run starts without a token call or an owners query.
    """
    from connector.crms.salesforce.adapter import TOKEN_REUSE_SECONDS, SalesforceAdapter

    return SalesforceAdapter(
        name, settings.base_url, secret_text(settings.credentials.client_id),
        secret_text(settings.credentials.client_secret), settings.api_version, timeout=options.timeout,
        retry=options.retry, calls=options.calls, write_batch_size=settings.write_batch_size,
        read_lag=timedelta(seconds=options.read_lag_seconds), owners_cache_seconds=options.owners_cache_seconds,
        token_cache_seconds=TOKEN_REUSE_SECONDS,
        governor=options.governor,
    )


register_dialect(DIALECT)

UNIT = CrmUnit(
    kind="salesforce",
    label="Salesforce",
    settings=SalesforceConnection,
    open_adapter=open_adapter,
    values=ValueStyle(text_only=False),
    field_word=("field", "fields"),
    creates_fields=False,  # custom fields are created in Setup; Relay only checks they exist
    person_kinds={"Lead": "lead", "Contact": "contact"},
    limits=CrmLimits(max_write_batch=SALESFORCE_MAX_WRITE_BATCH, max_page_size=SALESFORCE_PAGE_SIZE_RANGE[1],
                     min_page_size=SALESFORCE_PAGE_SIZE_RANGE[0]),
    sandbox="salesforce",
    read_webhook=read_webhook,  # outbound messages (SOAP), acknowledged with reply (outbound.py)
    webhook_reply=reply,
)
