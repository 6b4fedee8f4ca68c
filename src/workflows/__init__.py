"""Temporal workflows only: deterministic code, no I/O imports."""
