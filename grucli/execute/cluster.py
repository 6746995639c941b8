"""The Ray executor: each pack a Ray task on a local or an existing cluster; results come
back to the driver, which stores them. A pack's results come back when the whole pack has
trained: a pack killed midway is trained again in full (a pool delivers each run as it ends)."""

from __future__ import annotations

from grucli import runtime
from grucli.errors import GrucliError
from grucli.execute import Reporter, crashed, train
from grucli.grid import Run
from grucli.train import RunResult


def _ray_train(runs: list[Run], threads: int) -> list[RunResult]:
    return train(runs, [None] * len(runs), threads)


class Ray:
    """Each pack a Ray task (num_cpus=1); results come back to this driver, which stores them."""

    def __init__(self, jobs: int, threads: int | None, address: str | None, reporter: Reporter):
        try:
            import ray
        except ImportError:
            raise GrucliError('the ray executor needs Ray: pip install -e ".[ray]"') from None
        self.ray, self.threads = ray, threads
        if not ray.is_initialized():
            env = {"env_vars": dict(runtime.MALLOC_ENV)}
            try:
                if address:
                    ray.init(address=address, runtime_env=env, log_to_driver=False, include_dashboard=False)
                else:
                    ray.init(num_cpus=jobs, runtime_env=env, log_to_driver=False, include_dashboard=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise GrucliError(f"--address {address}: cannot connect to a Ray cluster: {e}".splitlines()[0]) from None
        self.slots = max(1, int(ray.cluster_resources().get("CPU", jobs))) if address else jobs
        self.remote = ray.remote(num_cpus=1, max_retries=0)(_ray_train)
        self.inflight: dict = {}
        self.deliver = None  # set by the driver: deliver(run, result)

    def busy(self) -> int:
        return len(self.inflight)

    def submit(self, runs: list[Run]) -> None:
        self.inflight[self.remote.remote(runs, self.threads)] = runs

    def wait(self) -> None:
        ready, _ = self.ray.wait(list(self.inflight), num_returns=1)
        for ref in ready:
            runs = self.inflight.pop(ref)
            try:
                results = self.ray.get(ref)
            except GrucliError:
                raise
            except Exception as e:  # task or worker failure: recorded, the grid goes on
                cause = getattr(e, "cause", None)
                if isinstance(cause, GrucliError):
                    raise cause from None
                results = [crashed(f"ray task failed: {type(e).__name__}: {e}".splitlines()[0]) for _ in runs]
            for run, result in zip(runs, results):
                self.deliver(run, result)

    def close(self, abort: bool = False) -> None:
        if abort:
            for ref in self.inflight:
                self.ray.cancel(ref, force=True)
