"""The SDK's tests run against a real stack: the four services as processes, demo data seeded.

The stack fixtures are the root test suite's (tests/system/conftest.py); run from the
repository root, `pytest clients/python/tests` starts its own stack on each backend.
"""

from __future__ import annotations

from tests.conftest import database_factory, postgres_admin_url
from tests.system.conftest import running_stack

__all__ = ["database_factory", "postgres_admin_url", "running_stack"]
