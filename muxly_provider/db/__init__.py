"""Muxly's database: SQLAlchemy models, the engine built from Muxly's own setting, and the DB manager."""
