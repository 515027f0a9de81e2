"""Compatibility alias: the counters moved to :mod:`streams.stats` so the crawler can own one too."""

from streams.stats import Stats

__all__ = ["Stats"]
