"""Deterministic identifiers: trace/span ids, correlation ids, order ids, fake tokens.

Everything comes from one seeded ``random.Random`` so a seed reproduces every byte; ids are
never all-zero (OTLP treats an all-zero id as invalid).
"""

from __future__ import annotations

import base64
import json
import random
import uuid


class IdSource:
    """Hands out ids from a private random stream."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def trace_id(self) -> bytes:
        """16 random bytes, not all zero (W3C trace-context)."""
        return (self._rng.getrandbits(128) or 1).to_bytes(16, "big")

    def span_id(self) -> bytes:
        """8 random bytes, not all zero."""
        return (self._rng.getrandbits(64) or 1).to_bytes(8, "big")

    def correlation_id(self) -> str:
        """A UUID-4 shaped string (what an edge proxy puts in ``x-request-id``)."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def order_id(self) -> str:
        return f"ord-{self._rng.randrange(16**8):08x}"

    def sku(self) -> str:
        return f"SKU-{self._rng.randrange(10000, 99999)}"

    def bearer_token(self) -> str:
        """A JWT-shaped fake token: redaction bait, signs nothing."""
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {"sub": f"svc-{self._rng.randrange(1000)}", "iat": 1790000000}

        def b64(raw: bytes) -> str:
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

        sig = self._rng.getrandbits(256).to_bytes(32, "big")
        parts = (json.dumps(header).encode(), json.dumps(payload).encode(), sig)
        return ".".join(b64(p) for p in parts)
