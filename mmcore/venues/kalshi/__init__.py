"""Kalshi Trade API v2 adapter, in layers (style item 11):

- :mod:`mmcore.venues.kalshi.schema` — pydantic wire models of the current API shape (V2 order
  writes, ``*_dollars`` / ``*_fp`` strings, WebSocket envelope and messages) and pure parsers,
  shared by our client and the local exchange;
- :mod:`mmcore.venues.kalshi.auth` — RSA-PSS request signing (``Signer``, ``PresignedPool``)
  and verification for the local exchange (``KeyRegistry``, ``verify_request``);
- the transports (REST over httpx, WebSocket) sit on top of these two.

Import from the submodules; this package deliberately re-exports nothing, so importing the
schema does not pull in ``cryptography`` and vice versa.
"""
