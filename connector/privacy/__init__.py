"""Personal data in Relay: kept out of its logs, and a data subject's access and erasure across its store.

* :mod:`connector.privacy.logfilter`: the logging filter on every handler Relay configures (emails,
  phone numbers and person names masked, tokens and secrets redacted).
* :mod:`connector.privacy.subject`: ``relay export-person`` and ``relay forget-person``: every row of
  Relay's store that names a person, exported or erased (the audit log keeps a pseudonymous key).
"""

from __future__ import annotations
