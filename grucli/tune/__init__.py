"""Tuning: search spaces -> one Optuna study per arm -> each arm's best on final seeds.

The package is also `grucli.tune(path, ...)`, the notebook API's tune (grucli/api.py)."""

import sys

import grucli

sys.modules[__name__].__class__ = grucli.CallableModule
