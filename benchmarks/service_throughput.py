"""Worker-protocol throughput of the avatune server vs Optuna's RDBStorage, SQLite and PostgreSQL.

avatune: a uvicorn server (`python -m service serve`, one process) on a grid study with
more queued trials than the run can use; CLIENTS client threads (stdlib http.client, one
keep-alive connection each) loop lease(1) + result (no training). "tuned": the same loop
on CLIENTS random-search studies whose in-flight limit is 1, so every lease asks a tuner
(rebuilt from the study's trials) within the limits. "advertising": the grid loop with
leases that list what the worker can run, as `avatune worker` sends them (the server
filters by the lists and names what to probe). "tpe": the tuned loop on TPE studies on the
paper grid, while a prober times `/healthz` every PROBE_SECONDS (its p99 and max show
whether tuner asks hold up the event loop). Optuna: CLIENTS threads
loop ask (two float params, random sampling) + tell on one RDBStorage study. Both run
SECONDS after a short warm-up, on SQLite and then on a PostgreSQL server the script starts
itself (skipped when its binaries are missing). Prints one JSON line (with the 1-minute
load average: timings on a shared machine are noisy). Targets on SQLite:
avatune_roundtrips_per_s ≥ 300, ratio ≥ 5 and healthz_p99_ms_during_tpe < 100.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WARMUP = 1.0
#: Seconds between two `/healthz` probes during the TPE run.
PROBE_SECONDS = 0.02


def _avatune_client(
    port: int, advertised: dict[str, Any], start: float, stop: float, index: int, out: Any
) -> None:
    """lease(1) + result in a loop over one keep-alive connection (stdlib: a light client);
    each lease request carries `advertised` (a real worker's lists of what it can run)."""
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        data = json.loads(response.read())
        assert response.status == 200, data
        return data

    done = 0
    while time.time() < stop:
        lease = post("/api/leases", {"worker_id": f"bench-{index}", "max_trials": 1, **advertised})
        if not lease["trials"]:
            continue  # every study has its limit in flight: ask again
        trial = lease["trials"][0]
        post(
            f"/api/trials/{trial['trial_id']}/result",
            {"token": lease["token"], "value": trial["alpha"]},
        )
        if time.time() >= start:
            done += 1
    conn.close()
    out.put(done)


def _optuna_client(url: str, start: float, stop: float, index: int, out: Any) -> None:
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(
        study_name="bench", storage=storage, sampler=optuna.samplers.RandomSampler(seed=index)
    )
    space = {"x": FloatDistribution(-6, 0), "y": FloatDistribution(-9, 0)}
    done = 0
    while time.time() < stop:
        trial = study.ask(space)
        study.tell(trial, trial.params["x"] ** 2 + trial.params["y"] ** 2)
        if time.time() >= start:
            done += 1
    out.put(done)


def _healthz_prober(port: int, start: float, stop: float, out: list[float]) -> None:
    """Time `/healthz` (ms) every PROBE_SECONDS from `start` to `stop`, on one keep-alive
    connection (a load balancer's prober)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.time() < stop:
        began = time.perf_counter()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        if time.time() >= start:
            out.append((time.perf_counter() - began) * 1000)
        time.sleep(PROBE_SECONDS)
    conn.close()


def _percentile(values: list[float], q: float) -> float:
    """The `q` quantile (nearest rank) of `values`; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _run_clients(
    target: Any, args: tuple, clients: int, seconds: float, probe: list[float] | None = None
) -> float:
    """`clients` threads loop until `stop`, counting only after a warm-up; rate per second.
    With `probe`, one more thread times `/healthz` (port: `args[0]`) into it meanwhile.

    Threads of one process (not processes): on a small machine, client processes would
    take the cores the server (or Optuna's own work) needs.
    """
    counts: queue.Queue[int] = queue.Queue()
    start = time.time() + WARMUP
    stop = start + seconds
    threads = [
        threading.Thread(target=target, args=(*args, start, stop, index, counts))
        for index in range(clients)
    ]
    if probe is not None:
        prober = threading.Thread(target=_healthz_prober, args=(args[0], start, stop, probe))
        prober.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    if probe is not None:
        prober.join(timeout=seconds + 120)
    return sum(counts.get() for _ in threads) / seconds


def _grid_spec() -> dict[str, Any]:
    n_alpha, n_eps = 150, 130  # 19,500 queued trials: more than a run uses
    return {
        "name": "throughput",
        "task": "mnist1d-mlp",
        "optimizer": "adam",
        "space": {
            "alphas": [1e-7 * 1.05**k for k in range(n_alpha)],
            "epsilons": [1e-10 * 1.05**k for k in range(n_eps)],
        },
        "tuner": {"name": "grid", "seed": 0},
    }


def _tuned_spec(index: int) -> dict[str, Any]:
    return {
        "name": f"tuned-{index}",
        "task": "mnist1d-mlp",
        "optimizer": "adam",
        "space": {"alpha": {"low": 1e-5, "high": 1.0}, "eps": {"low": 1e-10, "high": 1.0}},
        "tuner": {"name": "random", "seed": index, "parallelism": 1},
        "budget": 20_000,
    }


def _tpe_spec(index: int) -> dict[str, Any]:
    return {
        "name": f"tpe-{index}",
        "task": "mnist1d-mlp",
        "optimizer": "adam",
        "space": {"grid": "paper"},
        "tuner": {"name": "tpe", "seed": index},
        "budget": 441,
    }


def measure_avatune(
    url: str,
    clients: int,
    seconds: float,
    tuned: bool = False,
    advertise: bool = False,
    tpe: bool = False,
    probe: list[float] | None = None,
) -> float:
    """Round trips per second (lease(1) + result) against a fresh server on `url`: on one
    big grid, or (`tuned`) on one in-flight-limited random study per client, or (`tpe`) one
    TPE study on the paper grid per client; with `advertise`, leases that list what the
    worker can run (every built-in name, as `avatune worker` sends them: the server filters
    by them and names what to probe); with `probe`, `/healthz` latencies (ms) go there."""
    import httpx

    from service.migrations import upgrade
    from studies.specs import OPTIMIZERS, TASKS
    from tests.service.helpers import ServerProcess

    upgrade(url)
    specs = [_tuned_spec(i) for i in range(clients)] if tuned else [_grid_spec()]
    if tpe:
        specs = [_tpe_spec(i) for i in range(clients)]
    with ServerProcess(url, lease_seconds=600) as server:
        for spec in specs:
            created = httpx.post(f"{server.url}/api/studies", json=spec, timeout=120)
            created.raise_for_status()
        advertised = {"tasks": list(TASKS), "optimizers": list(OPTIMIZERS)} if advertise else {}
        return _run_clients(_avatune_client, (server.port, advertised), clients, seconds, probe)


def measure_optuna(url: str, clients: int, seconds: float) -> float:
    """ask + tell per second on Optuna's RDBStorage at `url`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="bench", storage=optuna.storages.RDBStorage(url))
    return _run_clients(_optuna_client, (url,), clients, seconds)


def main() -> None:
    """Run both systems on SQLite, then on PostgreSQL; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    figures: dict[str, Any] = {
        "clients": args.clients,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "load_1m": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="avatune-bench-") as tmp:
        avatune = measure_avatune(f"sqlite:///{tmp}/avatune.db", args.clients, args.seconds)
        tuned = measure_avatune(f"sqlite:///{tmp}/tuned.db", args.clients, args.seconds, True)
        listed = measure_avatune(
            f"sqlite:///{tmp}/listed.db", args.clients, args.seconds, advertise=True
        )
        probes: list[float] = []
        tpe = measure_avatune(
            f"sqlite:///{tmp}/tpe.db", args.clients, args.seconds, tpe=True, probe=probes
        )
        optuna_rate = measure_optuna(f"sqlite:///{tmp}/optuna.db", args.clients, args.seconds)
    figures.update(
        avatune_roundtrips_per_s=round(avatune, 1),
        avatune_tuned_roundtrips_per_s=round(tuned, 1),
        avatune_advertising_roundtrips_per_s=round(listed, 1),
        avatune_tpe_roundtrips_per_s=round(tpe, 1),
        healthz_p99_ms_during_tpe=round(_percentile(probes, 0.99), 1),
        healthz_max_ms_during_tpe=round(max(probes, default=float("nan")), 1),
        healthz_probes_during_tpe=len(probes),
        optuna_rdb_asktell_per_s=round(optuna_rate, 1),
        ratio=round(avatune / optuna_rate, 2),
    )
    if not args.no_postgres:
        from tests.service.postgres import PostgresServer, PostgresUnavailable

        try:
            server = PostgresServer().start()
        except (PostgresUnavailable, RuntimeError) as error:
            figures["postgresql"] = f"skipped: {error}"
        else:
            try:
                avatune = measure_avatune(
                    server.create_database("avatune"), args.clients, args.seconds
                )
                optuna_rate = measure_optuna(
                    server.create_database("optuna"), args.clients, args.seconds
                )
            finally:
                server.stop()
            figures.update(
                pg_avatune_roundtrips_per_s=round(avatune, 1),
                pg_optuna_rdb_asktell_per_s=round(optuna_rate, 1),
                pg_ratio=round(avatune / optuna_rate, 2),
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
