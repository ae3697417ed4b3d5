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
from studies.server_url import server_url, unreachable_message
from workers.display import Display
from workers.lease_training import load_trainer, torch_trainer
from workers.loop import WorkerLoop, WorkerStats

log = logging.getLogger("avatune.worker")


def describe_device(device: str | None) -> str:
    """e.g. 'cuda:0 NVIDIA H100' or 'cpu' (ValueError on an unusable device)."""
    import torch

    from workers.device import resolve_device

    where = resolve_device(device)
    if where.type == "cuda":
        return f"{where} {torch.cuda.get_device_name(where)}"[:200]
    return str(where)


def run_worker(
    server: str,
    token: str | None,
    *,
    device: str | None,
    max_batch: int,
    once: bool,
    quiet: bool = False,
    train_function: str | None = None,
) -> WorkerStats:
    """`avatune worker`: build the client and loop, handle signals, run until stopped.

    Exits 1 when the server is unreachable with `once` or is not an avatune server, 2 on a
    refused token, 130 after SIGINT (ValueError on a malformed `server`, before torch loads).
    """
    server = server_url(server)
    capabilities = None  # a custom trainer advertises no lists: it runs anything
    if train_function:
        try:
            trainer, described = load_trainer(train_function), device or "custom"
        except (ValueError, ImportError, AttributeError) as error:
            log.error("--train-function %s: %s", train_function, error)
            raise SystemExit(2) from None
    else:
        try:
            described = describe_device(device)
        except ValueError as error:  # e.g. cuda asked for on a machine without CUDA
            log.error("--device: %s", error)
            raise SystemExit(2) from None
        trainer = torch_trainer(device)
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
        max_batch=max_batch,
        once=once,
        device=described,
        display=display,
        capabilities=capabilities,
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
