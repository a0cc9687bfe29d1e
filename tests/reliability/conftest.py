"""Reliability tests reuse the handler tests' moto deployment built from template.yaml."""

from tests.functions.conftest import deployment  # noqa: F401 - a fixture, used by name
