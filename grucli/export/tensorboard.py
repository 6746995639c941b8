"""Runs -> TensorBoard: one event file per run, DEST/<experiment>/<run_id>/events.out.tfevents.grucli,
written with tensorboard's own protos and record writer (no TensorFlow, no torch).

    step 0           the hparams plugin's session start: the flattened config, plus
                     experiment, status (and role, arm, trial in a tuned folder), so the HParams
                     dashboard filters and sorts runs by any config key
    step = epoch     every history.csv column as a scalar (train/loss, val/<metric>,
                     time/epoch_time_s, ...), stored as float64 so they read back exactly
    last epoch       the summary's final numbers (final/test_<metric>, final/params, ...),
                     which the HParams dashboard shows as metrics

The file's bytes follow from the run's files alone (times from its summary and history),
so exporting again rewrites nothing that is unchanged, and a run whose files changed
(trained again) has its file replaced whole (atomically): never two copies.
"""

from __future__ import annotations

import io
from pathlib import Path

from grucli import store
from grucli.export.runs import TUNED, RunRecord

EVENT_FILE = "events.out.tfevents.grucli"  # "tfevents" in the name is what TensorBoard looks for


def write(runs: list[RunRecord], dest: Path) -> dict[str, list[str]]:
    """Write each run's event file; returns run keys by what happened: written (new),
    replaced (its files changed since the last export), unchanged."""
    done: dict[str, list[str]] = {"written": [], "replaced": [], "unchanged": []}
    for run in runs:
        path = event_path(dest, run)
        data = events(run)
        if path.is_file():
            if path.read_bytes() == data:
                done["unchanged"].append(run.key)
                continue
            done["replaced"].append(run.key)
        else:
            done["written"].append(run.key)
        store.atomic_write_bytes(path, data)
    return done


def event_path(dest: Path, run: RunRecord) -> Path:
    return Path(dest) / run.experiment / run.run_id / EVENT_FILE


def events(run: RunRecord) -> bytes:
    """The run's whole event file as bytes (TFRecord framing of Event protos)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    buf = io.BytesIO()
    out = RecordWriter(buf)

    def event(**kw) -> None:
        out.write(event_pb2.Event(**kw).SerializeToString(deterministic=True))

    event(wall_time=run.start, file_version="brain.Event:2")
    hp = {**run.params, "experiment": run.experiment, "status": run.status}
    hp.update({k: run.tags[k] for k in TUNED if k in run.tags})  # a tuned folder's role, arm, trial
    event(wall_time=run.start, step=0, summary=_session(hp, run))
    by_epoch: dict[int, list] = {}
    for name, values in run.series.items():
        for epoch, value in values:
            by_epoch.setdefault(epoch, []).append(_scalar(name, value))
    for epoch in sorted(by_epoch):
        event(wall_time=run.epoch_times.get(epoch, run.end), step=epoch,
              summary=summary_pb2.Summary(value=by_epoch[epoch]))
    if run.final:
        event(wall_time=run.end, step=run.last_epoch,
              summary=summary_pb2.Summary(value=[_scalar(k, v) for k, v in run.final.items()]))
    return buf.getvalue()


def _session(hp: dict, run: RunRecord):
    """The hparams plugin's session start, its map of values serialized in a fixed order
    (protobuf's default order of a map varies from process to process)."""
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.plugins.hparams import summary_v2 as hparams

    summary = hparams.hparams_pb(hp, trial_id=run.key, start_time_secs=run.start)
    plugin = summary.value[0].metadata.plugin_data
    plugin.content = plugin_data_pb2.HParamsPluginData.FromString(plugin.content).SerializeToString(deterministic=True)
    return summary


def _scalar(tag: str, value: float):
    """A scalar as TensorBoard 2 writes one: a rank-0 tensor with the scalars plugin's
    metadata (float64, where the older simple_value would round to float32)."""
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.plugins.scalar import metadata

    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                    double_val=[value])
    return summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata.create_summary_metadata(tag, ""))
