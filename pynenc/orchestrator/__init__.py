"""The orchestrator contract: atomic status transitions, ownership and concurrency."""

from pynenc.orchestrator.base import ACTIVE_STATUSES, BaseOrchestrator, ClaimResult

__all__ = ["ACTIVE_STATUSES", "BaseOrchestrator", "ClaimResult"]
