"""Serializers side by side: encode and decode one typical call's arguments and result."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pynenc.serializer import get_serializer

SERIALIZERS = ["JsonPickleSerializer", "JsonSerializer", "PickleSerializer", "MsgpackSerializer"]
# what JSON can carry too, so every serializer encodes the same thing
PAYLOAD: dict[str, Any] = {
    "order_id": 4242,
    "customer": "ann@example.com",
    "lines": [{"sku": f"SKU-{i}", "qty": i, "price": 9.99} for i in range(5)],
    "created": dt.datetime(2026, 12, 1, 12, 0).isoformat(),
}


@pytest.mark.benchmark(group="serializers-round-trip")
@pytest.mark.parametrize("name", SERIALIZERS)
def test_round_trip(benchmark: Any, name: str) -> None:
    serializer = get_serializer(name)()

    def round_trip() -> Any:
        return serializer.loads(serializer.dumps(PAYLOAD))

    assert benchmark(round_trip) == PAYLOAD
    stats = getattr(benchmark, "stats", None)
    benchmark.extra_info["encoded_bytes"] = len(serializer.dumps(PAYLOAD))
    if stats is not None:
        benchmark.extra_info["ops_per_sec"] = round(1 / stats.stats.median)
