"""The one exception type the CLI turns into a clean one-line message (exit code 2), and the
one way those messages name an unknown name or key (the closest valid ones, a bounded list).
Several problems found at once are one such line each (`each_line`)."""

from __future__ import annotations

import difflib


class GrucliError(Exception):
    """A user-facing error: bad config, bad data, unknown name. The message is one line
    that names the problem and where it is (file, key path)."""


class ConfigError(GrucliError):
    """The experiment file or a --set override is malformed or invalid."""


class DataError(GrucliError):
    """A data file or bundled data set is missing, malformed or unusable. `key` is the task
    key that points at the problem (path, column, label, text) when the raiser knows it;
    the command adds the experiment file and the key path (experiment.prepare)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def closest(name: str, valid, n: int = 3) -> list[str]:
    """The valid names closest to `name`: a case-only mismatch alone, else up to `n`
    close spellings (compared in lower case)."""
    valid = [str(v) for v in valid]
    same = [v for v in valid if v.lower() == str(name).lower()]
    if same:
        return same[:1]
    lower: dict[str, str] = {}
    for v in valid:
        lower.setdefault(v.lower(), v)
    return [lower[m] for m in difflib.get_close_matches(str(name).lower(), list(lower), n=n)]


def did_you_mean(name: str, valid) -> str:
    """' (did you mean 'a' or 'b'?)', or '' when nothing is close."""
    close = closest(name, valid)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def bounded(valid, what: str, shown: int = 8) -> str:
    """'columns: a, b' or, for a long list, '362 columns, first: a, b, ..., h, ...'."""
    valid = [str(v) for v in valid]
    if len(valid) <= shown:
        return f"{what}: {', '.join(valid)}"
    return f"{len(valid)} {what}, first: {', '.join(valid[:shown])}, ..."


def unknown_name(kind: str, value: str, valid) -> str:
    """'unknown cell 'grru' (did you mean 'gru'?); valid: ...' (the valid names in their
    registry's order, bounded)."""
    return f"unknown {kind} '{value}'{did_you_mean(value, valid)}; {bounded(valid, 'valid', 40)}"


SHOWN_ERRORS = 5  # problems found at once: this many lines, then one saying how many more


def each_line(lines: list[str], shown: int = SHOWN_ERRORS) -> str:
    """Several problems as one message, one complete line each (the CLI prints each as an
    `error:` line); past `shown`, a last line says how many more there are."""
    more = [f"... and {len(lines) - shown} more errors"] if len(lines) > shown else []
    return "\n".join(lines[:shown] + more)


def closest_key(leaf: str, valid) -> str | None:
    """The valid key an unknown one was probably meant to be, if one is close."""
    close = difflib.get_close_matches(leaf, list(valid), n=1, cutoff=0.5)
    return close[0] if close else None


def unknown_key(key: str, valid) -> str:
    """'unknown key 'model.hiden_size' (did you mean 'model.hidden_size'?)', or the valid keys
    when nothing is close."""
    parent, _, leaf = key.rpartition(".")
    close = closest_key(leaf, valid)
    prefix = f"{parent}." if parent else ""
    hint = f" (did you mean '{prefix}{close}'?)" if close else f"; {bounded(sorted(valid), 'valid keys', 40)}"
    return f"unknown key '{key}'{hint}"
