"""Loads every fixture module of tests/support as a pytest plugin."""

from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.support")

pytest_plugins = sorted(
    f"tests.support.{path.stem}"
    for path in (Path(__file__).parent / "support").glob("*.py")
    if path.stem != "__init__"
)
