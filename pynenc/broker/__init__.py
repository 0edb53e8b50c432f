"""The broker contract: a queue of invocation ids."""

from pynenc.broker.base import BaseBroker

__all__ = ["BaseBroker"]
