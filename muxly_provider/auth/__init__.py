"""Authentication and authorization of Muxly's management API.

* :mod:`~muxly_provider.auth.passwords`: Argon2id password hashes of local users;
* :mod:`~muxly_provider.auth.tokens` and :mod:`~muxly_provider.auth.sessions`: opaque access and refresh tokens,
  stored only as hashes in ``auth_sessions``, rotating refresh, logout;
* :mod:`~muxly_provider.auth.throttle`: failed-login throttling;
* :mod:`~muxly_provider.auth.keycloak` and :mod:`~muxly_provider.auth.airflow_token`: bearer JWTs of a Keycloak
  realm and of the Airflow UI;
* :mod:`~muxly_provider.auth.permissions`: ``(resource, action)`` permissions with ``*`` wildcards;
* :mod:`~muxly_provider.auth.dependencies`: the FastAPI dependencies, :func:`require` above all.
"""
