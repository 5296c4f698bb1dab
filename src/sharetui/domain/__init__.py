"""Leaf types of the domain: ids, roles and levels, record refs, durations,
schedules and time conversion. Imports nothing of sharetui but ``errors``."""
