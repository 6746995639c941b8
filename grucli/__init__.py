"""grucli: a command-line lab for GRU vs LSTM vs RNN comparisons."""

__version__ = "0.1.0"
