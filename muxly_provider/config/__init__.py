"""Pydantic models of Muxly's configuration rows and JSON columns, and their validation.

One module per table family (:mod:`.auth` and :mod:`.connectors`, :mod:`.destinations`, :mod:`.rules` and
:mod:`.transformations`, :mod:`.jobs`, :mod:`.webhooks`); :func:`muxly_provider.config.validation.validate_row`
is the one entry point. Models of JSON column contents end in ``Config``; validated rows end in ``RowSpec``.
This package imports neither Airflow nor SQLAlchemy, and nothing here does work at import time.
"""
