"""grucli.numbers is the one place a number becomes text: its forms, and that no other
module formats a measured number or writes its own "no value" mark."""

from __future__ import annotations

import math
import re
from pathlib import Path

from grucli import numbers
from grucli.numbers import NONE, interval, num, p_text, p_value, share, times

PACKAGE = Path(numbers.__file__).parent


def test_one_mark_for_no_value():
    assert num(None) == num(math.nan) == p_value(None) == share(math.nan) == times(None) == NONE
    assert interval(0.5, None, 1.0) == "0.5"
    np, pd = __import__("numpy"), __import__("pandas")
    assert num(np.float32("nan")) == num(pd.NA) == num(pd.NaT) == NONE and num(np.int64(1297)) == "1,297"


def test_forms():
    assert num(1297) == "1,297" and num(1297.0) == "1,297" and num(12345.6) == "12,346"  # counts in full
    assert num(0.012345) == "0.0123" and num(0.012345, 4) == "0.01235" and num(2e-5) == "2.00e-05"
    assert num(0) == "0" and num("window") == "window" and num(True) == "True"
    assert p_text(0.0342) == "p = 0.034" and p_text(1e-9) == "p < 0.001"
    assert share(0.254) == "25%" and share(0.254, 1) == "25.4%" and times(1.3167) == "1.3x" and times(0.01874) == "0.019x"


def test_no_module_formats_a_measured_number_itself():
    """f-string format specs such as {x:.3g} or {x:.0%}, and the marks "n/a" / "-" for a
    missing value, belong in numbers.py. A value the user wrote is echoed with {v:g}."""
    spec = re.compile(r"\{[^{}]*:,?\.[0-9]+[gfe%]\}")
    allowed = {"grid.py", "tasks/sources.py", "starter.py"}  # labels, data messages
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "numbers.py" or rel in allowed:
            continue
        text = path.read_text()
        found += [f"{rel}: {m}" for m in spec.findall(text)]
        found += [f"{rel}: {m}" for m in re.findall(r'return "(?:n/a|-|–)"', text)]
    assert not found, found
