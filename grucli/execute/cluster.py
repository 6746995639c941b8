"""The Ray executor: each pack a Ray task on a local or an existing cluster; results come
back to the driver, which stores them. A pack's results come back when the whole pack has
trained: a pack killed midway is trained again in full (a pool delivers each run as it ends)."""

from __future__ import annotations

import os
from pathlib import Path

from grucli import runtime
from grucli.errors import GrucliError
from grucli.execute.worker import Reporter, crashed, train
from grucli.grid import Run
from grucli.train.loop import RunResult


AUTH_MODE, AUTH_TOKEN, AUTH_TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"


def token_source() -> str | None:
    """Where Ray would take this machine's cluster token from, in Ray's order (RAY_AUTH_TOKEN,
    the file RAY_AUTH_TOKEN_PATH names, ~/.ray/auth_token), or None. Only looks whether a
    token is there; Ray itself reads it."""
    if os.environ.get(AUTH_TOKEN):
        return AUTH_TOKEN
    if os.environ.get(AUTH_TOKEN_PATH):
        return AUTH_TOKEN_PATH if _non_empty(Path(os.environ[AUTH_TOKEN_PATH])) else None
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if _non_empty(default) else None


def _non_empty(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def token_auth(address: str) -> str:
    """Before connecting to the cluster at `address`, Ray's token authentication as Ray
    documents it (docs.ray.io, ray-security/token-auth): RAY_AUTH_MODE=token on every node
    and the client, the token from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.
    Ray >= 2.59 starts clusters with tokens on, but a client given an explicit address
    turns them on only when told, and then only prints `InvalidAuthToken` warnings and a
    connection failure. So: RAY_AUTH_MODE unset and a token present -> token mode (as `ray
    start --address` does when joining a node); token mode and no token -> one line, before
    trying. Returns a hint for the error line should the connection still fail."""
    mode = os.environ.get(AUTH_MODE, "").lower()
    source = token_source()
    fix = (f"give this machine the cluster's token (`ray get-auth-token` on the head node prints it): "
           f"{AUTH_TOKEN}=<token>, or {AUTH_TOKEN_PATH}=<file holding it>, or the file ~/.ray/auth_token")
    if mode == "token" and source is None:
        raise GrucliError(f"--address {address}: {AUTH_MODE}=token but no Ray token is set: {fix}")
    if not mode and source is not None:
        os.environ[AUTH_MODE] = "token"  # this process's Ray client only
        mode = "token"
    if mode == "token":
        return f" (token authentication on, token from {source}: is it the cluster's token?)"
    return (f" (if the cluster uses token authentication, on by default since Ray 2.59: {fix}; "
            f"{AUTH_MODE}=disabled on every node turns it off)")


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
            hint = token_auth(address) if address else ""
            try:
                if address:
                    ray.init(address=address, runtime_env=env, log_to_driver=False, include_dashboard=False)
                else:
                    ray.init(num_cpus=jobs, runtime_env=env, log_to_driver=False, include_dashboard=False)
            except Exception as e:  # noqa: BLE001 -- Ray's connection and authentication errors have no common base
                why = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise GrucliError(f"--address {address}: cannot connect to a Ray cluster: {why}{hint}") from None
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
