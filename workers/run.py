"""`avatune worker`'s glue: the trainer, the client (with the stop event the signal handlers
set), the display and the loop; the device line, the summary line and the exit code."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading

from avatune.lease_client import ServiceClient, Unauthorized, WrongServer
from studies.protocol import LeaseResponse
from studies.server_url import server_url, unreachable_message
from workers.display import Display
from workers.lease_training import Outcome, ProgressFn, Trainer, load_trainer, torch_trainer
from workers.loop import WorkerLoop, WorkerStats

log = logging.getLogger("avatune.worker")
#: workers.device.CPU_MAX_BATCH, without importing torch for a custom trainer.
CPU_MAX_BATCH = 64


def on_device(trainer: Trainer, device: str) -> Trainer:
    """`trainer` making `device` current on the thread that trains (CUDA's current device is
    per thread), so that tensors put on plain "cuda" land on the chosen card."""
    from workers.device import resolve_device, use_device

    def train_lease(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        use_device(resolve_device(device))
        return trainer(lease, progress)

    return train_lease


def _torch_setup(device: str | None) -> tuple[str, str, int]:
    """Make the device current and set its numerics policy; its name for the trainer, its
    description for the server, and the default trials per lease on it. ValueError on an
    unusable device (e.g. cuda:3 of 2 GPUs)."""
    from workers.device import default_max_batch, describe_device, resolve_device, use_device
    from workers.numerics import apply_cuda_policy

    where = use_device(resolve_device(device))
    apply_cuda_policy(where)  # before the first CUDA matmul: cuBLAS reads its workspace once
    return str(where), describe_device(where), default_max_batch(where)


def run_worker(
    server: str,
    token: str | None,
    *,
    device: str | None,
    max_batch: int | None = None,
    once: bool,
    quiet: bool = False,
    train_function: str | None = None,
    prefetch: bool = True,
    worker_id: str | None = None,
) -> WorkerStats:
    """`avatune worker`: build the client and loop, handle signals, run until stopped.

    `max_batch` None: the server's cap on CUDA, 64 on CPU. Exits 1 when the server is
    unreachable with `once` or is not an avatune server, 2 on a refused token or an unusable
    device, 130 after SIGINT (ValueError on a malformed `server`, before torch loads).
    """
    server = server_url(server)
    capabilities = None  # a custom trainer advertises no lists: it runs anything
    if train_function:
        try:
            trainer, described = load_trainer(train_function), device or "custom"
        except (ValueError, ImportError, AttributeError) as error:
            log.error("--train-function %s: %s", train_function, error)
            raise SystemExit(2) from None
        default_batch = CPU_MAX_BATCH  # the custom trainer's device is its own business
    else:
        try:
            chosen, described, default_batch = _torch_setup(device)
        except ValueError as error:  # e.g. cuda asked for on a machine without CUDA
            log.error("--device: %s", error)
            raise SystemExit(2) from None
        trainer = on_device(torch_trainer(chosen), chosen)
        from workers.capabilities import WorkerCapabilities

        capabilities = WorkerCapabilities.discover()
    # Progress bars only on a terminal: under nohup or a supervisor, plain log lines.
    display = None if quiet or not sys.stderr.isatty() else Display()

    def retrying(reason: str, delay: float) -> None:
        log.warning("server unreachable (%s); retrying in %.1f s", reason, delay)

    client = ServiceClient(server, token, stop=threading.Event(), on_retry=retrying)
    loop = WorkerLoop(
        client,
        trainer,
        worker_id=worker_id,
        max_batch=max_batch or default_batch,
        once=once,
        device=described,
        display=display,
        capabilities=capabilities,
        prefetch=prefetch,
    )
    loop.install_signal_handlers()
    started = {"worker": loop.worker_id, "device": described, "server": server}
    try:
        with display or contextlib.nullcontext():
            log.info("worker %s on %s → %s", loop.worker_id, described, server, extra=started)
            stats = loop.run()
    except Unauthorized as error:
        log.error("the server refused this worker's token: %s", error)
        raise SystemExit(2) from None
    except ConnectionError as error:  # only with --once: without, the loop waits it out
        log.error("%s", unreachable_message(client.url, str(error)))
        raise SystemExit(1) from None
    except WrongServer as error:
        log.error("%s", error)
        raise SystemExit(1) from None
    finally:
        client.close()
    log.info(
        "worker %s: %d leases, %d results delivered, %d refused, %d dropped, %d released, "
        "%d failed",
        loop.worker_id,
        stats.leases,
        stats.delivered,
        stats.refused,
        stats.dropped,
        stats.released,
        stats.failed,
        extra={"worker": loop.worker_id, **vars(stats)},
    )
    if loop.training is not None and loop.training.is_alive():
        os._exit(exit_code(loop))  # an abandoned training thread would only delay the exit
    if exit_code(loop):
        raise SystemExit(exit_code(loop))
    return stats


def exit_code(loop: WorkerLoop) -> int:
    """130 after SIGINT (the shell's convention for Ctrl-C); 0 otherwise, SIGTERM included."""
    return 128 + signal.SIGINT if loop.signal == signal.SIGINT else 0
