"""`grucli sample`: what a trained model writes -- text continued by a char_lm or word_lm
run, or the output an encoder-decoder run (g2p, reverse, csv_translate) decodes for an input."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from grucli.commands.common import at_least_one, clean_errors, console


@clean_errors
def sample(
    run_dir: Path = typer.Argument(..., help="A finished run folder: results/<experiment>/<run_id>."),
    prime: str = typer.Option("The ", "--prime", "-p", help="Language models: the text to continue."),
    length: int = typer.Option(200, "--length", "-n", help="Language models: tokens (characters or words) to add."),
    temperature: float = typer.Option(0.8, "--temperature", "-t", min=0.0,
                                      help="Language models: softmax temperature; 0 = always the most likely token."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling."),
    context: Optional[int] = typer.Option(None, "--context",
                                          help="Language models: tokens the model sees per step (default: the run's seq_len)."),
    inputs: Optional[list[str]] = typer.Option(None, "--input", "-i",
                                               help="Encoder-decoder runs: an input to decode, e.g. a word for g2p "
                                                    "(repeat for several)."),
    beam: int = typer.Option(1, "--beam", "-b", help="Encoder-decoder runs: beam width (1 = greedy)."),
) -> None:
    """Print what a trained model writes: a char_lm / word_lm run continues --prime, an
    encoder-decoder run (g2p, reverse, csv_translate) decodes --input.

    Example:

        grucli sample results/char_lm/0123abcd4567 --prime "The " --length 200
        grucli sample results/g2p/0123abcd4567 --input grucli --beam 4
    """
    from grucli.sample import sample_text, translate

    at_least_one(length=length, context=context, beam=beam)
    note = lambda msg: typer.echo(msg, err=True)  # noqa: E731
    if inputs:
        outputs = translate(run_dir, inputs, beam, note=note)
        for text, out in zip(inputs, outputs):
            typer.echo(out if len(inputs) == 1 else f"{text}\t{out}")
        return
    console.print(sample_text(run_dir, prime, length, temperature, seed, context, note=note), markup=False)
