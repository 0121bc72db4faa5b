"""Embedded session platform: a small but real local implementation of the per-user container platform.

Start it with ``python -m testbed up`` and stop it with ``python -m testbed down``.
"""
