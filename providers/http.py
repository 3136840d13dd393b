"""HTTP client settings shared by every provider client."""

from __future__ import annotations

import httpx

__all__ = ["MAX_STREAMS", "stream_limits"]

MAX_STREAMS = 1000
"""Streams one client may hold open at once. httpx's default pool of 100 connections
made stream 101 to one platform wait and then fail (seen at 200 concurrent replies in
bench/streaming.py); each streaming answer holds one connection for its whole length."""


def stream_limits() -> httpx.Limits:
    """Connection limits for a provider's ``httpx.AsyncClient``: many long streams, 100 idle."""
    return httpx.Limits(max_connections=MAX_STREAMS, max_keepalive_connections=100)
