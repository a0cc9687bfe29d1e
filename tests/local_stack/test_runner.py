"""A FunctionRunner behaves like one Lambda execution environment of one function."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_stack.runner import FunctionError, FunctionRunner
from tests.local_stack.helpers import write_function

ENDPOINT_URL = "http://127.0.0.1:9"  # Nothing listens; the probe never calls AWS.

PROBE = """
    import os
    import sys
    import time

    INVOCATIONS = 0


    def lambda_handler(event, context):
        global INVOCATIONS
        INVOCATIONS += 1
        action = event["action"]
        if action == "raise":
            raise ValueError("the probe was asked to fail")
        if action == "sleep":
            time.sleep(event["seconds"])
        if action == "not-json":
            return {"value": object()}
        if action == "exit":
            sys.exit(3)
        return {
            "invocations": INVOCATIONS,
            "pid": os.getpid(),
            "environment": dict(os.environ),
            "cwd": os.getcwd(),
            "sys_path_head": sys.path[:2],
            "context": {
                "function_name": context.function_name,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "invoked_function_arn": context.invoked_function_arn,
                "aws_request_id": context.aws_request_id,
                "remaining_ms": context.get_remaining_time_in_millis(),
            },
        }
"""


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    return write_function(tmp_path / "probe", PROBE)


@pytest.fixture
def layer_dir(tmp_path: Path) -> Path:
    layer = tmp_path / "layer"
    layer.mkdir()
    return layer


@pytest.fixture
def runner(probe_dir: Path, layer_dir: Path) -> Iterator[FunctionRunner]:
    with FunctionRunner(
        "ProbeFunction",
        probe_dir,
        "app.lambda_handler",
        {"SETTING": "from-template"},
        layer_dir,
        endpoint_url=ENDPOINT_URL,
        function_name="recsys-local-probefunction",
        memory_mb=512,
        timeout_s=5,
    ) as probe:
        yield probe


def test_worker_environment_is_the_function_environment_plus_lambda_variables(
    runner: FunctionRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a variable in the caller's environment that the function does not declare
    monkeypatch.setenv("CALLER_ONLY_VARIABLE", "must-not-leak")

    # WHEN the function reads its environment
    environment = runner.invoke({"action": "report"})["environment"]

    # THEN it holds its own variables, the local endpoint and fake credentials, nothing else
    assert environment["SETTING"] == "from-template"
    assert environment["AWS_ENDPOINT_URL"] == ENDPOINT_URL
    assert environment["AWS_ACCESS_KEY_ID"] == "testing"
    assert environment["AWS_DEFAULT_REGION"] == "us-east-1"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "recsys-local-probefunction"
    assert "CALLER_ONLY_VARIABLE" not in environment


def test_each_runner_sees_only_its_own_environment(probe_dir: Path, layer_dir: Path) -> None:
    # GIVEN two runners of the same code with different environments
    first = FunctionRunner(
        "First", probe_dir, "app.lambda_handler", {"NAME": "first"}, endpoint_url=ENDPOINT_URL
    )
    second = FunctionRunner(
        "Second", probe_dir, "app.lambda_handler", {"NAME": "second"}, endpoint_url=ENDPOINT_URL
    )

    # WHEN both are invoked
    with first, second:
        seen_by_first = first.invoke({"action": "report"})["environment"]
        seen_by_second = second.invoke({"action": "report"})["environment"]

    # THEN each sees its own value
    assert (seen_by_first["NAME"], seen_by_second["NAME"]) == ("first", "second")


def test_code_and_layer_lead_the_import_path_and_code_is_the_working_directory(
    runner: FunctionRunner, probe_dir: Path, layer_dir: Path
) -> None:
    # GIVEN a runner with a code directory and a layer
    # WHEN the function reports where it runs
    report = runner.invoke({"action": "report"})

    # THEN it imports from its code first, then the layer, and runs in its code directory
    assert report["sys_path_head"] == [str(probe_dir.resolve()), str(layer_dir.resolve())]
    assert report["cwd"] == str(probe_dir.resolve())


def test_handler_stays_loaded_between_invocations(runner: FunctionRunner) -> None:
    # GIVEN a function invoked once
    first = runner.invoke({"action": "report"})

    # WHEN it is invoked again
    second = runner.invoke({"action": "report"})

    # THEN the same warm process served both, keeping module state
    assert second["pid"] == first["pid"]
    assert second["invocations"] == 2


def test_first_invocation_reports_a_cold_start(runner: FunctionRunner) -> None:
    # GIVEN a runner never invoked
    assert runner.cold_start is None

    # WHEN it is invoked twice
    runner.invoke({"action": "report"})
    runner.invoke({"action": "report"})

    # THEN one cold start was measured, including the import
    assert runner.cold_starts == 1
    assert runner.cold_start is not None
    assert runner.cold_start.first_invoke_s >= runner.cold_start.init_s


def test_context_carries_lambda_attributes(runner: FunctionRunner) -> None:
    # GIVEN a runner with a name, memory size and timeout
    # WHEN the function reads its context
    context = runner.invoke({"action": "report"})["context"]

    # THEN the context describes this function and this invocation
    assert context["function_name"] == "recsys-local-probefunction"
    assert context["memory_limit_in_mb"] == "512"
    assert context["invoked_function_arn"] == runner.function_arn
    assert len(context["aws_request_id"]) == 36
    assert 0 < context["remaining_ms"] <= 5000


def test_raising_handler_becomes_function_error(runner: FunctionRunner) -> None:
    # GIVEN a handler that raises ValueError
    # WHEN it is invoked
    with pytest.raises(FunctionError) as raised:
        runner.invoke({"action": "raise"})

    # THEN the error carries the type, the message and the worker's traceback
    assert raised.value.error_type == "ValueError"
    assert raised.value.message == "the probe was asked to fail"
    assert "lambda_handler" in raised.value.traceback


def test_worker_survives_a_raising_handler(runner: FunctionRunner) -> None:
    # GIVEN a warm function whose last invocation raised
    pid = runner.invoke({"action": "report"})["pid"]
    with pytest.raises(FunctionError):
        runner.invoke({"action": "raise"})

    # WHEN it is invoked again
    report = runner.invoke({"action": "report"})

    # THEN the same process serves it
    assert report["pid"] == pid


def test_handler_over_its_timeout_is_killed_and_the_next_invoke_is_cold(
    runner: FunctionRunner,
) -> None:
    # GIVEN a warm function
    pid = runner.invoke({"action": "report"})["pid"]

    # WHEN an invocation runs over its timeout
    with pytest.raises(FunctionError) as raised:
        runner.invoke({"action": "sleep", "seconds": 30}, timeout_s=0.3)

    # THEN it fails as Lambda's timeout does and a new process serves the next invoke
    assert raised.value.error_type == "Sandbox.Timedout"
    assert runner.invoke({"action": "report"})["pid"] != pid


def test_result_that_is_not_json_is_a_marshal_error(runner: FunctionRunner) -> None:
    # GIVEN a handler returning an object JSON cannot hold
    # WHEN it is invoked
    with pytest.raises(FunctionError) as raised:
        runner.invoke({"action": "not-json"})

    # THEN the invocation fails as Lambda's serialization does
    assert raised.value.error_type == "Runtime.MarshalError"


def test_handler_that_exits_fails_and_is_replaced(runner: FunctionRunner) -> None:
    # GIVEN a handler that calls sys.exit
    # WHEN it is invoked
    with pytest.raises(FunctionError) as raised:
        runner.invoke({"action": "exit"})

    # THEN the invocation fails and the next one gets a fresh process
    assert raised.value.error_type == "Runtime.ExitError"
    assert runner.invoke({"action": "report"})["invocations"] == 1


def test_missing_handler_module_is_an_import_error(tmp_path: Path) -> None:
    # GIVEN a runner whose handler names a module that does not exist
    broken = FunctionRunner(
        "Broken", tmp_path, "missing.lambda_handler", {}, endpoint_url=ENDPOINT_URL
    )

    # WHEN it is invoked
    with broken, pytest.raises(FunctionError) as raised:
        broken.invoke({})

    # THEN it fails as Lambda's init does
    assert raised.value.error_type == "Runtime.ImportModuleError"


def test_runner_refuses_to_start_without_a_local_endpoint(probe_dir: Path) -> None:
    # GIVEN no endpoint URL, neither as argument nor in the environment
    # WHEN a runner is created
    # THEN it refuses, since boto3 in the worker would otherwise reach AWS
    with pytest.raises(ValueError, match="endpoint"):
        FunctionRunner("NoEndpoint", probe_dir, "app.lambda_handler", {})


def test_close_leaves_no_child_process(probe_dir: Path) -> None:
    # GIVEN a warm runner
    runner = FunctionRunner(
        "Closing", probe_dir, "app.lambda_handler", {}, endpoint_url=ENDPOINT_URL
    )
    pid = runner.invoke({"action": "report"})["pid"]

    # WHEN it is closed
    runner.close()

    # THEN its worker is gone
    assert multiprocessing.active_children() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_closed_runner_refuses_invocations(probe_dir: Path) -> None:
    # GIVEN a closed runner
    runner = FunctionRunner(
        "Closed", probe_dir, "app.lambda_handler", {}, endpoint_url=ENDPOINT_URL
    )
    runner.close()

    # WHEN it is invoked
    # THEN it refuses instead of starting a worker nobody would stop
    with pytest.raises(RuntimeError, match="closed"):
        runner.invoke({"action": "report"})
