"""Where the zoo's models run: a local pool of processes (default) or Ray tasks.

Both run :func:`edgeport.zoo.run.run_model` once per model and return its JSON row, in the order of the
zoo file, so the aggregate report is the same whichever executor made it.

- :func:`run_pool`: ``jobs`` threads, each starting one model at a time in a fresh process through
  :func:`edgeport.worker.run_in_worker` (timeouts, death with the parent, crash reporting). A model whose
  process dies is a failed row (exit 3); the others go on.
- :func:`run_ray`: one Ray task per model (``num_cpus=1``; memory is bounded by the model's watchdog). ``address="auto"``
  starts a local Ray instance on 127.0.0.1 and stops it afterwards; any other address joins that cluster,
  whose nodes need edgeport installed and must see the output folder at the same path (a shared file
  system), since a model's steps read the files its conversion wrote. Ray is imported only here.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from edgeport.zoo.config import ModelSpec

MODEL_TIMEOUT = 6 * 3600.0  # a whole model; each step has its own timeout inside


def failed_row(spec: ModelSpec, out_root: str, reason: str, seconds: float = 0.0) -> dict[str, Any]:
    """The row of a model whose own process (or Ray task) died before it could report."""
    return {"name": spec.name, "reference": spec.reference, "out": str(Path(out_root) / spec.name),
            "formats": list(spec.formats), "steps": {}, "reused": [], "error": reason, "error_step": "model process",
            "exit_code": 3, "seconds": round(seconds, 3)}


def run_pool(specs: list[ModelSpec], out_root: str, jobs: int, max_memory_mb: float | None,
             on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    from edgeport.outdir import STATE_DIR
    from edgeport.worker import run_in_worker

    def one(spec: ModelSpec) -> dict[str, Any]:
        log = Path(out_root) / f".{spec.name}.zoo.log" if not (Path(out_root) / spec.name / STATE_DIR).is_dir() \
            else Path(out_root) / spec.name / STATE_DIR / "logs" / "zoo.log"
        res = run_in_worker("edgeport.zoo.run:model_job",
                            {"spec": spec.to_json(), "out_root": str(out_root), "max_memory_mb": max_memory_mb},
                            timeout=MODEL_TIMEOUT, log_path=log)
        row = res.value if res.ok else failed_row(spec, out_root, res.reason(), res.seconds)
        if res.ok and log.name.startswith(".") and log.exists():
            log.unlink()  # the model's folder did not exist yet; its own logs are inside it now
        if on_done is not None:
            on_done(row)
        return row

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="edgeport-zoo") as pool:
        return list(pool.map(one, specs))


def run_ray(specs: list[ModelSpec], out_root: str, address: str, jobs: int, max_memory_mb: float | None,
            on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    ray = _import_ray()
    started = _connect(ray, address, jobs)
    try:
        # no memory= request: Ray would hold back (or never schedule) a task asking more than its estimate of the
        # node's free memory; the per-model watchdog of edgeport.zoo.run bounds the memory instead
        task = ray.remote(_ray_model).options(num_cpus=1, max_retries=0)
        pending = {task.remote(spec.to_json(), str(out_root), max_memory_mb): spec for spec in specs}
        rows: dict[str, dict[str, Any]] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(done[0])
            try:
                row = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - the task's process died (or Ray lost the node): that model's row
                row = failed_row(spec, out_root, f"Ray task failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            rows[spec.name] = row
            if on_done is not None:
                on_done(row)
        return [rows[s.name] for s in specs]
    finally:
        if started:
            ray.shutdown()


def _ray_model(spec: dict[str, Any], out_root: str, max_memory_mb: float | None) -> dict[str, Any]:
    from edgeport.zoo.run import model_job

    return model_job(spec=spec, out_root=out_root, max_memory_mb=max_memory_mb)


def _import_ray():
    from edgeport.errors import UsageError

    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs the ray package", "pip install 'edgeport[ray]', or run without --ray (a local process pool)") from None
    return ray


def _connect(ray, address: str, jobs: int) -> bool:
    """Start a local instance (``auto``) or join ``address``. True when this call started Ray."""
    from edgeport.errors import RuntimeFailure

    env = {"PYTHONPATH": os.pathsep.join(_child_paths())}
    try:
        if address == "auto":
            ray.init(address="local", num_cpus=max(1, jobs), include_dashboard=False, _node_ip_address="127.0.0.1",
                     runtime_env={"env_vars": env}, log_to_driver=False, configure_logging=False)
            return True
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        return False
    except Exception as exc:  # noqa: BLE001 - no cluster there, a version mismatch, ...
        raise RuntimeFailure(f"cannot {'start' if address == 'auto' else 'join'} Ray ({address}): {' '.join(str(exc).split())[:300]}",
                             "check the address (ray status), or use --ray auto / the local pool") from None


def _child_paths() -> list[str]:
    """What this process imports from (edgeport, sample_models, the user's packages), for Ray's workers."""
    src = str(Path(__file__).resolve().parents[2])
    return list(dict.fromkeys([src] + [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)]))

