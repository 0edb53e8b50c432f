"""Serializers: round-trips, which types each keeps or refuses, and name lookup."""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, Flag, IntEnum, StrEnum
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynenc.exceptions import ConfigError, SerializationError
from pynenc.serializer import (
    BaseSerializer,
    JsonPickleSerializer,
    JsonSerializable,
    JsonSerializer,
    MsgpackSerializer,
    PickleSerializer,
    get_serializer,
)

ALL: list[type[BaseSerializer]] = [
    JsonPickleSerializer,
    JsonSerializer,
    PickleSerializer,
    MsgpackSerializer,
]
PYTHON_TYPED: list[type[BaseSerializer]] = [
    JsonPickleSerializer,
    PickleSerializer,
    MsgpackSerializer,
]


@dataclass
class Point:
    x: int
    y: int


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Mode(StrEnum):
    FAST = "fast"


class Planet(Enum):
    EARTH = (5.97e24, 6.37e6)  # tuple value: JSON cannot hold it as-is


class Perm(Flag):
    READ = 1
    WRITE = 2


class Money:
    def __init__(self, amount: float, currency: Color) -> None:
        self.amount, self.currency = amount, currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and vars(self) == vars(other)

    def to_json(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Money:
        return cls(data["amount"], data["currency"])


class Wallet:
    def __init__(self, owner: str, coins: list[Money]) -> None:
        self.owner, self.coins = owner, coins

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Wallet) and vars(self) == vars(other)

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "coins": self.coins}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Wallet:
        return cls(data["owner"], data["coins"])


class QuotaError(Exception):
    def __init__(self, user: str, limit: int) -> None:
        super().__init__(user, limit)
        self.user, self.limit = user, limit


def assert_identical(got: Any, expected: Any) -> None:
    """Equal and of the same types all the way down (so True != 1 and (1,) != [1])."""
    assert type(got) is type(expected), (got, expected)
    if isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            assert_identical(got[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected)
        for got_item, expected_item in zip(got, expected, strict=True):
            assert_identical(got_item, expected_item)
    else:
        assert got == expected


@pytest.fixture(params=ALL, ids=lambda cls: cls.name)
def serializer(request: pytest.FixtureRequest) -> BaseSerializer:
    serializer_cls: type[BaseSerializer] = request.param
    return serializer_cls()


NATIVES: list[Any] = [
    None,
    True,
    0,
    -(2**63),
    2**63 - 1,
    3.25,
    "",
    "héllo ✓",
    [],
    {},
    [1, "a", None, [2.5, {"k": False}]],
    {"nested": {"list": [1, 2, {"deep": "x"}]}, "n": None},
]


@pytest.mark.parametrize("value", NATIVES, ids=repr)
def test_json_natives_round_trip(serializer: BaseSerializer, value: Any) -> None:
    assert_identical(serializer.loads(serializer.dumps(value)), value)


@pytest.mark.parametrize("value", [None, 1, "x", [1], {"a": (1, 2)}, Color.RED])
def test_dumps_returns_bytes(serializer: BaseSerializer, value: Any) -> None:
    assert type(serializer.dumps(value)) is bytes


PYTHON_VALUES: list[Any] = [
    {1, 2, 3},
    frozenset({"a", "b"}),
    (1, "two", (3.0, None)),
    [(1, 2), {3}],
    b"\x00\xffbytes",
    datetime(2024, 5, 17, 12, 30, 1, 123456),
    datetime(2024, 5, 17, 12, 30, tzinfo=UTC),
    datetime(2024, 5, 17, 12, 30, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    datetime(2024, 5, 17, 12, 30, tzinfo=ZoneInfo("Europe/Madrid")),
    date(2024, 2, 29),
    Decimal("3.14159265358979323846"),
    Decimal("-0.00"),
    Point(1, 2),
    [Point(3, 4), {"p": Point(5, 6)}],
    Color.BLUE,
    Level.HIGH,
    Mode.FAST,
    Planet.EARTH,
    Perm.READ | Perm.WRITE,
    {1: "int key", (2, 3): "tuple key"},
    OrderedDict(a=1, b=2),
    2**100,
]


@pytest.mark.parametrize("serializer_cls", PYTHON_TYPED, ids=lambda cls: cls.name)
@pytest.mark.parametrize("value", PYTHON_VALUES, ids=repr)
def test_pickle_based_serializers_keep_python_types(
    serializer_cls: type[BaseSerializer], value: Any
) -> None:
    serializer = serializer_cls()
    restored = serializer.loads(serializer.dumps(value))
    assert_identical(restored, value)
    if isinstance(value, datetime):
        assert restored.tzinfo == value.tzinfo


@pytest.mark.parametrize(
    "member", [Color.RED, Level.LOW, Mode.FAST, Planet.EARTH, Perm.READ | Perm.WRITE]
)
def test_json_round_trips_enums_to_the_same_member(member: Enum) -> None:
    serializer = JsonSerializer()
    assert serializer.loads(serializer.dumps(member)) is member
    assert b"__pynenc__enum__" in serializer.dumps(member)


def test_json_round_trips_nested_enums() -> None:
    serializer = JsonSerializer()
    value = {
        "colors": [Color.RED, Color.BLUE],
        "level": {"now": Level.HIGH},
        "deep": [[1, {"mode": Mode.FAST}]],
        "n": 1,
    }
    restored = serializer.loads(serializer.dumps(value))
    assert restored == value
    assert restored["colors"][0] is Color.RED
    assert type(restored["level"]["now"]) is Level
    assert type(restored["deep"][0][1]["mode"]) is Mode


def test_json_round_trips_json_serializable_objects() -> None:
    serializer = JsonSerializer()
    price = Money(9.99, Color.RED)
    assert isinstance(price, JsonSerializable)
    restored = serializer.loads(serializer.dumps(price))
    assert type(restored) is Money
    assert restored == price
    assert restored.currency is Color.RED


def test_json_round_trips_nested_json_serializable_objects() -> None:
    serializer = JsonSerializer()
    wallet = Wallet("ana", [Money(1.5, Color.RED), Money(2.0, Color.BLUE)])
    value = {"wallets": [wallet], "by_name": {"ana": wallet}}
    restored = serializer.loads(serializer.dumps(value))
    assert restored == value
    assert type(restored["wallets"][0].coins[1]) is Money


def test_json_turns_tuples_into_lists() -> None:
    serializer = JsonSerializer()
    assert_identical(serializer.loads(serializer.dumps((1, (2, Color.RED)))), [1, [2, Color.RED]])


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ({1, 2}, "set"),
        (Point(1, 2), "Point"),
        ([1, {"deep": Point(1, 2)}], "Point"),
        (b"raw", "bytes"),
        (datetime(2024, 1, 1), "datetime"),
        (Decimal("1.5"), "Decimal"),
        (uuid4(), "UUID"),
        (Money(1.0, Color.RED).to_json() | {"extra": {3}}, "set"),
    ],
    ids=repr,
)
def test_json_refuses_other_types(value: Any, type_name: str) -> None:
    with pytest.raises(SerializationError, match="not JSON serializable") as info:
        JsonSerializer().dumps(value)
    assert type_name in str(info.value)


def test_json_refuses_non_str_keys() -> None:
    with pytest.raises(SerializationError, match="key"):
        JsonSerializer().dumps({1: "a"})


def test_json_refuses_classes_defined_in_functions() -> None:
    class Local(Enum):
        A = 1

    with pytest.raises(SerializationError, match="inside a function"):
        JsonSerializer().dumps(Local.A)


@pytest.mark.parametrize("error", [ValueError("bad", 3), QuotaError("ana", 10)], ids=repr)
def test_json_round_trips_exceptions(error: Exception) -> None:
    serializer = JsonSerializer()
    restored = serializer.loads(serializer.dumps({"error": error}))["error"]
    assert type(restored) is type(error)
    assert restored.args == error.args


def test_json_reports_a_class_that_cannot_be_imported() -> None:
    payload = b'{"__pynenc__enum__": {"module": "no_such_module", "qualname": "E", "name": "A"}}'
    with pytest.raises(SerializationError, match="no_such_module"):
        JsonSerializer().loads(payload)


def test_json_will_not_call_a_class_that_is_not_an_enum() -> None:
    payload = b'{"__pynenc__enum__": {"module": "os", "qualname": "DirEntry", "name": "A"}}'
    with pytest.raises(SerializationError, match="not a subclass of Enum"):
        JsonSerializer().loads(payload)


def test_corrupt_payloads_raise_serialization_error(serializer: BaseSerializer) -> None:
    with pytest.raises(SerializationError):
        serializer.loads(b"\xc1 definitely not a payload")


def test_instances_can_be_shared_across_threads(serializer: BaseSerializer) -> None:
    start = threading.Barrier(8)

    def round_trip(i: int) -> Any:
        start.wait()
        return [serializer.loads(serializer.dumps({"i": i, "xs": [i] * 50})) for _ in range(50)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(round_trip, range(8)))
    for i, runs in enumerate(results):
        assert all(run == {"i": i, "xs": [i] * 50} for run in runs)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("JsonPickleSerializer", JsonPickleSerializer),
        ("JsonSerializer", JsonSerializer),
        ("PickleSerializer", PickleSerializer),
        ("MsgpackSerializer", MsgpackSerializer),
        ("json_pickle", JsonPickleSerializer),
        ("jsonpickle", JsonPickleSerializer),
        ("json", JsonSerializer),
        ("pickle", PickleSerializer),
        ("msgpack", MsgpackSerializer),
        ("JSON", JsonSerializer),
        ("MsgPack", MsgpackSerializer),
        ("jsonpickleserializer", JsonPickleSerializer),
    ],
)
def test_get_serializer_accepts_class_and_short_names(
    name: str, expected: type[BaseSerializer]
) -> None:
    assert get_serializer(name) is expected


def test_get_serializer_lists_valid_names_for_an_unknown_one() -> None:
    with pytest.raises(ConfigError, match="yaml") as info:
        get_serializer("yaml")
    for valid in ("JsonPickleSerializer", "json_pickle", "JsonSerializer", "pickle", "msgpack"):
        assert valid in str(info.value)


_json_text = st.text(st.characters(exclude_categories=["Cs"]))
json_natives = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _json_text,
    lambda children: st.lists(children) | st.dictionaries(_json_text, children),
    max_leaves=25,
)


@pytest.mark.parametrize("serializer_cls", ALL, ids=lambda cls: cls.name)
@given(value=json_natives)
def test_any_json_native_value_round_trips(
    serializer_cls: type[BaseSerializer], value: Any
) -> None:
    serializer = serializer_cls()
    data = serializer.dumps(value)
    assert type(data) is bytes
    assert_identical(serializer.loads(data), value)


scalars = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.booleans(),
    st.none(),
)


@given(value=scalars)
def test_json_pickle_scalar_fast_path_stays_jsonpickle_compatible(value: object) -> None:
    """Scalars skip jsonpickle for speed; the bytes must be what jsonpickle reads and writes."""
    import jsonpickle

    serializer = JsonPickleSerializer()
    ours = serializer.dumps(value)
    assert jsonpickle.decode(ours.decode(), keys=True) == value
    theirs = jsonpickle.encode(value, keys=True).encode()
    back = serializer.loads(theirs)
    assert back == value and type(back) is type(value)
