"""Muxly's triggers, run by Airflow's triggerer (:mod:`muxly_provider.triggers.webhook`)."""
