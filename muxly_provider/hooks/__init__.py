"""Muxly's Airflow hooks (``Muxly<Thing>Hook``), one module each."""
