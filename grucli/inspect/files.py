"""What `grucli inspect` writes, and the one reader of it (the report reads inspect results
through here, without importing torch):

    <run_dir>/inspect/inspect.json                   the numeric summary of one run
    <run_dir>/inspect/gates_<i>.png|svg              gate traces of test sequence i
    <run_dir>/inspect/saturation.png|svg             gate histograms over the test set
    <run_dir>/inspect/gradient_flow.png|svg          ‖∂L/∂h_t‖ vs t, trained and at init
    <exp_dir>/inspect/compare.json                   one run per cell side by side
    <exp_dir>/inspect/compare_gates_<i>, compare_saturation, compare_gradient_flow (.png|.svg)

`--out DIR` writes the same files into DIR instead.
"""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA = 1
INSPECT_DIR, SUMMARY_FILE, COMPARE_FILE = "inspect", "inspect.json", "compare.json"
FIGURE_FORMATS = ("png", "svg")
CAPTIONS = {"gates": "gate activations over time, one run per cell on the same test input",
            "saturation": "distribution of each gate over the test set (share < 0.1 and > 0.9)",
            "gradient_flow": "mean ‖∂L/∂h_t‖ against t, trained and at initialisation"}


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def read_inspect_summary(run_dir: str | Path) -> dict | None:
    """A run's inspect.json if it exists and parses, else None. Figure paths in it
    ("figures") are relative to its inspect folder."""
    return _read(Path(run_dir) / INSPECT_DIR / SUMMARY_FILE)


def compare_figures(exp_dir: str | Path) -> list[tuple[Path, str]]:
    """(png, what it shows) of every side-by-side figure of an experiment."""
    out = []
    for png in sorted((Path(exp_dir) / INSPECT_DIR).glob("compare_*.png")):
        kind = next((k for k in CAPTIONS if png.stem.startswith(f"compare_{k}")), None)
        out.append((png, CAPTIONS.get(kind, png.stem)))
    return out
