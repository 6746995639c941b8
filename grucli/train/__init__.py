"""One run, or one pack of runs trained together, from a resolved config to a RunResult.

    loop.py      train_run / train_pack: the epochs, early stopping, divergence, timing, the result
    packing.py   which runs may train together (pack keys) and how a grid is cut into packs
    steppers.py  how a pack takes a step: run by run, or as one stacked computation
    stacked.py   the stacked computation: K runs' weights side by side in one kernel call
    optim.py     optimisers and gradient clipping for one run or several
    memory.py    what a run holds in memory (activations, parameters, optimiser state)

Importing this package imports nothing; `grucli.train.packing` stays free of torch, so the
CLI and the planner can cut a grid into packs without loading the models.
"""
