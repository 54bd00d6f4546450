"""Alerts: who is told what about a lead, through which channel (email, Slack, SMS); and which of
Relay's own events the RevOps admins are told about (operational alerts).

The notifier port of Relay. :mod:`.alert` holds the :class:`~connector.notify.alert.Alert`
value (recipient, lead, score and why, tier, deadline, CRM link, event kind) and the
:class:`~connector.notify.alert.OperationsAlert` value (event kind, facts, when);
:mod:`.settings` the model of ``config/rules/alerts.yaml`` (channels per tier, templates,
delivery, the ``operations`` section); :mod:`.templates` renders an alert into a message; :mod:`.channels` sends it
over SMTP, a Slack incoming webhook or an SMS API shaped like Twilio's; :mod:`.links`
asks each CRM's unit for the link to a record. Queuing (exactly once per decision) and
sending (retries, backoff, dead letters) live in ``connector.pipeline.alerts``.

The package imports nothing that sends at import time: ``connector.config.loader`` reads
:mod:`.settings` without pulling in SMTP or HTTP clients.
"""
