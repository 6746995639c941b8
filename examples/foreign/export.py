"""Write the data sets of the README's "Tried as a user would" table as plain files, the way a
user would bring their own: read from the installed packages' data files (nothing is
downloaded, and grucli never imports these packages), written as CSV or copied as .ts.

    python examples/foreign/export.py OUTDIR            # every data set whose package is installed
    python examples/foreign/export.py OUTDIR watch names

Then, for each written file: `grucli init OUTDIR/<file>`, `grucli compare`, `grucli report`,
`grucli tune`, `grucli report` (the commands init prints).

| name       | package (extra `real`) | file written                  | what it is |
|------------|------------------------|-------------------------------|------------|
| airline    | aeon                   | airline.csv                   | monthly airline passengers 1949-1960, 144 rows (seasonal) |
| nile       | statsmodels            | nile.csv                      | yearly Nile flow 1871-1970, 100 rows (no season) |
| watch      | seglearn               | watch.csv (long: id, t, 6 channels, exercise, split) | 140 smartwatch recordings of 7 shoulder exercises, 10 subjects, 50 Hz kept every 5th sample (10 Hz); subjects 9 and 10 are the test split |
| names      | gender-guesser         | names.csv (name, gender)      | 34,881 first names marked plainly male or female in the package's name dictionary (names marked both ways are left out) |
| gestures   | aeon                   | PickupGestureWiimoteZ_TRAIN.ts / _TEST.ts | 10 Wiimote gestures, official 50/50 split |
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def package_dir(name: str) -> Path | None:
    """An installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def airline(out: Path) -> Path:
    src = package_dir("aeon") / "datasets/data/Airline/Airline.csv"
    return Path(shutil.copy(src, out / "airline.csv"))


def nile(out: Path) -> Path:
    src = package_dir("statsmodels") / "datasets/nile/nile.csv"
    return Path(shutil.copy(src, out / "nile.csv"))


def watch(out: Path, every: int = 5, test_subjects=(9, 10)) -> Path:
    """seglearn's smartwatch data (a pickled dict of numpy arrays, read with numpy alone) as a
    long CSV: one row per kept sample, one column per channel, the exercise constant per id."""
    data = np.load(package_dir("seglearn") / "data/watch_dataset.npy", allow_pickle=True).item()
    frames = []
    for i, (x, y, subject) in enumerate(zip(data["X"], data["y"], data["subject"])):
        x = x[::every]  # (T, 6): 50 Hz -> 10 Hz
        df = pd.DataFrame(x.round(4), columns=data["X_labels"])
        df.insert(0, "t", np.arange(len(x)))
        df.insert(0, "id", f"rec{i:03d}")
        df["exercise"] = data["y_labels"][int(y)]
        df["split"] = "test" if int(subject) in test_subjects else "train"
        frames.append(df)
    path = out / "watch.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path


def names(out: Path) -> Path:
    """gender-guesser's name dictionary: the names marked plainly male (M) or female (F);
    '+' in a name joins its parts (the dictionary's own convention) and becomes a space."""
    rows = []
    with open(package_dir("gender_guesser") / "data/nam_dict.txt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            code, name = line[:2].strip(), line[3:29].strip()
            if code in ("M", "F") and name:
                rows.append((name.replace("+", " "), "male" if code == "M" else "female"))
    path = out / "names.csv"
    pd.DataFrame(rows, columns=["name", "gender"]).drop_duplicates("name", keep=False).to_csv(path, index=False)
    return path


def gestures(out: Path) -> Path:
    src = package_dir("aeon") / "datasets/data/PickupGestureWiimoteZ"
    for part in ("TRAIN", "TEST"):
        shutil.copy(src / f"PickupGestureWiimoteZ_{part}.ts", out)
    return out / "PickupGestureWiimoteZ_TRAIN.ts"


EXPORTS = {"airline": (airline, "aeon"), "nile": (nile, "statsmodels"), "watch": (watch, "seglearn"),
           "names": (names, "gender_guesser"), "gestures": (gestures, "aeon")}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    out, wanted = Path(argv[0]), argv[1:] or list(EXPORTS)
    out.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        export, package = EXPORTS[name]
        if package_dir(package) is None:
            print(f"{name}: skipped, {package} is not installed (pip install -e '.[real]')")
            continue
        print(f"{name}: wrote {export(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
