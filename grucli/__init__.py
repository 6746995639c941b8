"""grucli: a command-line lab for GRU vs LSTM vs RNN comparisons, and the library behind it.

    import grucli
    res = grucli.compare("experiments/adding.yaml", set={"train.epochs": 2})   # grucli compare
    study = grucli.tune("experiments/tune_adding.yaml")                        # grucli tune
    res = grucli.load("results/adding")                                        # read a results folder

The notebook API lives in grucli/api.py, imported on first use of one of its names (PEP 562),
so `import grucli` (and `grucli --help`) stays light: no torch, no pandas.
"""

import types

__version__ = "0.1.0"
__all__ = ["compare", "tune", "load", "GrucliError", "ConfigError"]

_API = ("compare", "load", "Results")
_ERRORS = ("GrucliError", "ConfigError", "DataError")


def __getattr__(name: str):
    if name in _API:
        from grucli import api

        return getattr(api, name)
    if name in _ERRORS:
        from grucli import errors

        return getattr(errors, name)
    if name == "tune":  # the subpackage grucli.tune, callable as the API's tune (the two share the name)
        import grucli.tune

        return grucli.tune
    raise AttributeError(f"module 'grucli' has no attribute '{name}'")


def __dir__():
    return sorted([*globals(), *_API, *_ERRORS, "tune"])


class CallableModule(types.ModuleType):
    """A package that is also an API function of the same name: `grucli.tune(path, ...)` runs
    grucli.api.tune, while `grucli.tune.run`, `from grucli.tune import study` stay the package's
    modules. (Whichever was imported first, the attribute grucli.tune is the package.)"""

    def __call__(self, *args, **kwargs):
        from grucli import api

        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)
