"""Starting and stopping the stack: nothing of it outlives it, one per process."""

from __future__ import annotations

import multiprocessing
import socket
import threading
from pathlib import Path

import pytest

from local_stack.moto_server import MotoServer
from local_stack.stack import LocalStack
from tests.local_stack.fake_repository import get_json, make_repository, put_interaction
from tests.local_stack.helpers import threads_other_than, wait_for

pytestmark = pytest.mark.integration

CATCH_UP_TIMEOUT_S = 30.0


def _port_is_closed(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) != 0


def test_stopped_stack_leaves_no_process_thread_or_open_port(tmp_path: Path) -> None:
    # GIVEN a stack that has served a request and ingested an event
    before = set(threading.enumerate())
    stack = LocalStack(make_repository(tmp_path / "repository"), api_port=0).start()
    put_interaction(stack, "dave", "item-1")
    stack.wait_until_caught_up(CATCH_UP_TIMEOUT_S)
    get_json(f"{stack.api_url}/users/dave/recommendations", "dave")
    moto_url, api_url = stack.endpoint_url, stack.api_url

    # WHEN it stops
    stack.stop()

    # THEN no child process, thread or listening port of it is left
    assert multiprocessing.active_children() == []
    assert wait_for(lambda: threads_other_than(before) == []), threads_other_than(before)
    assert _port_is_closed(moto_url)
    assert _port_is_closed(api_url)


def test_second_moto_server_in_one_process_is_refused() -> None:
    # GIVEN a moto server running in this process
    with MotoServer() as first:
        # WHEN a second one is started
        # THEN it refuses, since it would share and reset the first one's state
        with pytest.raises(RuntimeError, match="process-wide"):
            MotoServer().start()

        assert first.running


def test_taken_port_is_an_error_not_a_hang() -> None:
    # GIVEN a port some other program listens on
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]

        # WHEN a moto server is started on it
        # THEN it fails at once and leaves room for the next server
        with pytest.raises(OSError):
            MotoServer(port).start()

    with MotoServer() as server:
        assert server.running
