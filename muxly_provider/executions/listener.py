"""Placeholder; replaced by the real listener."""
