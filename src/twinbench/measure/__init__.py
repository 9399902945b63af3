"""Timing and statistics. Never imports a framework: synchronisation is passed in."""
