"""Relay's configuration: settings, connections, mappings, rules; loading and validation.

Import what you need from its modules (``connector.config.loader.load_config``,
``connector.config.relay.RelayFile``...): the package itself imports nothing, so that a CRM
unit can build its settings on :mod:`connector.config.connection` while
:mod:`connector.config.relay` joins the units' models.
"""
