"""Fault injection around boto3 clients, for reliability tests and `make chaos`.

:class:`FaultInjectingClient` passes every call through to a real client, except that chosen
operations raise the same ``ClientError`` AWS would send (throttling, internal errors) at a
seeded rate. Code under test cannot tell it from the service misbehaving.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

THROTTLING_CODES = {
    "dynamodb": "ProvisionedThroughputExceededException",
    "kinesis": "ProvisionedThroughputExceededException",
    "s3": "SlowDown",
    "sqs": "ThrottlingException",
}


@dataclass
class FaultPlan:
    """Which operations fail, how often, and with which error code.

    Attributes
    ----------
    rate
        Probability that one call of a listed operation fails.
    operations
        boto3 method names (``put_item``, ``get_object``...) that may fail; empty means all.
    error_code
        The AWS error code raised.
    seed
        Seeds the draws, so a run can be repeated exactly.
    fail_first
        Fail this many calls unconditionally before the random rate applies.
    """

    rate: float
    error_code: str
    operations: frozenset[str] = frozenset()
    seed: int = 0
    fail_first: int = 0
    injected: Counter[str] = field(default_factory=Counter)


class FaultInjectingClient:
    """A boto3 client look-alike that fails some calls as the plan says."""

    def __init__(self, client: Any, plan: FaultPlan) -> None:
        self._client = client
        self._plan = plan
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        self.exceptions = client.exceptions
        self.meta = client.meta

    @property
    def injected(self) -> Counter[str]:
        """How many faults were injected, per operation."""
        return self._plan.injected

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or not self._applies_to(name):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._should_fail(name):
                raise ClientError(
                    {
                        "Error": {"Code": self._plan.error_code, "Message": "injected fault"},
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    name,
                )
            return target(*args, **kwargs)

        return call

    def _applies_to(self, name: str) -> bool:
        return not self._plan.operations or name in self._plan.operations

    def _should_fail(self, name: str) -> bool:
        with self._lock:
            if sum(self._plan.injected.values()) < self._plan.fail_first:
                fail = True
            else:
                fail = self._rng.random() < self._plan.rate
            if fail:
                self._plan.injected[name] += 1
            return fail
