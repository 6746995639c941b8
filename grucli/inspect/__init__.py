"""`grucli inspect`: look inside trained runs -- gate activations over time, gate saturation
over the test set, gradient flow back through time, trained vs at initialisation.

    files.py     what inspect writes and the one reader of it (torch-free; the report uses it)
    unroll.py    a layer re-run step by step with the cell's own step: gates and ∂L/∂h_t
    analysis.py  a run folder rebuilt (config -> task -> model -> weights) and its numbers
    figures.py   matplotlib figures from those numbers (nothing is computed there)
    run.py       analyse -> draw -> write, for one run or one run per cell of an experiment

Each module only imports the ones above it in this list.
"""
