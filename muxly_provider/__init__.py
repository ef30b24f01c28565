"""Muxly for Apache Airflow: config-driven data pipelines stored as rows in Muxly's own tables."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
