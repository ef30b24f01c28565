"""``airflow muxly ...`` commands."""
