"""Muxly's HTTP surface: the FastAPI app the plugin mounts at ``/muxly`` on Airflow's api-server."""
