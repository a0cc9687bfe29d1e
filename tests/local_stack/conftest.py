"""Fixtures of the local stack tests: a moto server, fake functions written to tmp_path.

The fake functions stand in for the product's handlers, so these tests check the
emulations (what a handler receives, what happens to what it returns) and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.client import BaseClient

from local_stack.moto_server import MotoServer


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    """A moto server on 127.0.0.1 for the module, emptied when it starts."""
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def kinesis(moto: MotoServer) -> Iterator[BaseClient]:
    client = moto.client("kinesis")
    yield client
    client.close()


@pytest.fixture(scope="module")
def sqs(moto: MotoServer) -> Iterator[BaseClient]:
    client = moto.client("sqs")
    yield client
    client.close()


@pytest.fixture(scope="module")
def s3(moto: MotoServer) -> Iterator[BaseClient]:
    client = moto.client("s3")
    yield client
    client.close()
