"""Synthetic demo data (small, seeded, generated in seconds)."""
