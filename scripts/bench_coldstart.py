"""Cold start: import time of each function, and a timed first invocation in a fresh process.

Two measurements per function, each in new interpreters:

- ``python -X importtime -c "import app"`` in the function's folder with ``shared/`` on the
  path, as Lambda lays out ``/var/task`` and the layer. The cumulative time of ``app`` is
  the init phase; self times summed per top-level package show where it goes.
- ``bench_coldstart_child.py``: import, then a first and a second invocation against moto in
  the same process (see that module for what is and is not in the time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from bench_coldstart_child import FAKE_CREDENTIALS, LOGICAL_IDS, REGION, STACK_PREFIX
from bench_common import REPO, Report, median

SECTION = "coldstart"
FUNCTIONS = ("recommend", "ingest", "train")
RECOMMEND_TARGET_MS = 1000.0
CHILD_TIMEOUT_S = 300
MS_PER_S = 1e3
US_PER_MS = 1e3

# Packages whose own modules' import time is reported for the recommend function; botocore
# is counted with boto3, pydantic_core with pydantic, and the X-Ray SDK (which Powertools'
# Tracer imports) on its own.
PACKAGE_GROUPS = {
    "numpy": ("numpy",),
    "pydantic": ("pydantic", "pydantic_core"),
    "boto3": ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil"),
    "powertools": ("aws_lambda_powertools",),
    "xray": ("aws_xray_sdk", "wrapt"),
    "recsys": ("recsys",),
}


def run(report: Report) -> None:
    """Import and first-invocation times of every function; the target bounds recommend."""
    repeats = 1 if report.quick else 3
    for function in FUNCTIONS:
        print(f"cold start of {function}", flush=True)
        imports = [_import_times(function) for _ in range(repeats)]
        children = [_child_timings(function) for _ in range(repeats)]

        cumulative = median([times["app"] for times in imports])
        report.add(SECTION, f"{function}.import_ms", cumulative / US_PER_MS, "ms")
        if function == "recommend":
            grouped = set().union(*PACKAGE_GROUPS.values())
            for group, packages in PACKAGE_GROUPS.items():
                own = median([_self_time(times, packages) for times in imports])
                report.add(SECTION, f"{function}.import_self_{group}_ms", own / US_PER_MS, "ms")
            other = median([times["app"] - _self_time(times, grouped) for times in imports])
            report.add(SECTION, f"{function}.import_self_other_ms", other / US_PER_MS, "ms")

        first = median([child["first_invocation_s"] for child in children]) * MS_PER_S
        warm = median([child["warm_invocation_s"] for child in children]) * MS_PER_S
        total = median([child["import_s"] + child["first_invocation_s"] for child in children])
        report.add(SECTION, f"{function}.first_invocation_ms", first, "ms", reference=warm)
        report.add(
            SECTION,
            f"{function}.cold_start_ms",
            total * MS_PER_S,
            "ms",
            target=RECOMMEND_TARGET_MS if function == "recommend" else None,
        )


def _environment(function: str | None = None) -> dict[str, str]:
    """This process's environment with ``shared/`` on the path and fake AWS credentials.

    With a function, its template variables are added too: Powertools reads its namespace
    and service name when the module is imported, so they must be set before, as Lambda does.
    """
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(REPO / "shared")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        environment.pop(name, None)
    environment.update(FAKE_CREDENTIALS)
    if function is not None:
        environment.update(_function_environment(function))
        # No X-Ray daemon runs here; the tracer is still imported and wraps the handler.
        environment.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_DEV": "false"})
    return environment


@cache
def _function_environment(function: str) -> dict[str, str]:
    """The function's variables as ``template.yaml`` sets them, resolved against moto.

    Local names derive from the prefix alone, so the child that provisions again with the
    same prefix gets the same names.
    """
    import boto3
    from moto import mock_aws

    from local_stack.template import load_template, provision

    with mock_aws():
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        resources = provision(
            load_template(REPO / "template.yaml"),
            kinesis=session.client("kinesis"),
            dynamodb=session.client("dynamodb"),
            s3=session.client("s3"),
            sqs=session.client("sqs"),
            prefix=STACK_PREFIX,
        )
        return resources.function_environment(LOGICAL_IDS[function])


def _import_times(function: str) -> dict[str, float]:
    """Microseconds per module from ``-X importtime``: ``app`` cumulative, others self."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=REPO / "functions" / function,
        env=_environment(function),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=True,
    )
    times: dict[str, float] = {}
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        module = name.strip()
        if module == "app" and not name.startswith("  "):
            times["app"] = float(cumulative_us)
        else:
            times[module] = times.get(module, 0.0) + float(self_us)
    if "app" not in times:
        raise RuntimeError(f"no import time for app of {function}: {completed.stderr[-500:]}")
    return times


def _self_time(times: dict[str, float], packages: tuple[str, ...] | set[str]) -> float:
    return sum(
        micros
        for module, micros in times.items()
        if module != "app" and module.split(".")[0] in packages
    )


def _child_timings(function: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        out_path = Path(folder) / "timings.json"
        completed = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("bench_coldstart_child.py")),
                function,
                str(out_path),
            ],
            cwd=REPO,
            env=_environment(function),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0 or not out_path.exists():
            raise RuntimeError(
                f"cold start of {function} failed ({completed.returncode}): "
                f"{completed.stderr[-2000:]}"
            )
        timings: dict[str, float] = json.loads(out_path.read_text())
    return timings
