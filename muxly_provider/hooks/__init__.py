"""Airflow hooks: Muxly's own (``connector``: ``MuxlyConnectorHook``) and the way Muxly reaches the Airflow
providers' hooks behind a ``conn_id`` (``providers``: SMTP, Slack, Amazon, common-sql)."""
