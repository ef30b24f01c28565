"""Muxly's one HTTP layer: every outbound HTTP request of Muxly goes through it.

- :mod:`.client`: :class:`~muxly_provider.http.client.HttpClient`, a ``requests`` session with the server-side
  request guard (:mod:`muxly_provider.security.network`, redirects included), tenacity retries, a client-side
  rate limit and one re-authentication on 401; used by the ``api``, ``bigquery``, ``ga4`` and ``hubspot``
  connectors (:mod:`muxly_provider.connectors.http_client`), the ``webhook`` destination
  (:mod:`muxly_provider.destinations.http`) and Pushgateway pushes;
- :mod:`.retry`: what Muxly's retry settings mean to tenacity (backoff, ``Retry-After``, final failures);
- :mod:`.ratelimit`: the client-side rate limit (``connection_settings.rate_limit``);
- :mod:`.oauth`: OAuth 2 access tokens through authlib (refresh token, authorization code, client credentials).

Google credentials go through google-auth's own ``AuthorizedSession`` (:mod:`muxly_provider.connectors.auth`);
Airflow HTTP connections through the HTTP provider's ``HttpHook`` session. Both are guarded the same way.
"""
