"""A user's own training loop as a worker (`Client.run_trials`, `Client.trials`): one trial
of one study at a time, heartbeats while it trains, results and failures reported, and the
lease handed back (no attempt used) on Ctrl-C, SIGTERM, `break` or an escaping error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from avatune.client import (
    Client,
    Result,
    Terminated,
    TrialHandle,
    TrialSettled,
)
from studies.schemas import StudyOut
from tests.client.conftest import LEASE_SECONDS, TOKEN, external_study, objective
from tests.service.helpers import ROOT, ThreadServer, _env


def _states(client: Client, study: StudyOut) -> list[tuple[str, int]]:
    """Each training's (state, attempts), in number order."""
    return [(t.state, t.attempts) for t in client.study_trials(study)]


def test_run_trials_trains_each_trial_once_until_the_study_is_done(client: Client) -> None:
    study = client.create_study(external_study())
    seen: list[TrialHandle] = []

    def train(trial: TrialHandle) -> float:
        seen.append(trial)
        assert trial.state == "leased" and not trial.lost
        return objective(trial.alpha, trial.eps)

    summary = client.run_trials(study, train)
    assert summary.ended == "study done" and summary.leased == summary.reported == 4
    assert summary.failed == summary.released == summary.refused == 0
    assert summary.best is not None and (summary.best.alpha, summary.best.eps) == (1e-2, 1e-8)
    assert Counter(t.trial_id for t in seen) == {t.id: 1 for t in client.study_trials(study)}
    first = seen[0]
    assert first.study_id == study.id and first.number == 0
    assert first.optimizer.name == "adam" and first.task.name == "external"
    assert first.task.config == {"model": "tiny", "layers": 2} and first.fidelity.steps == 7
    assert {t.state for t in seen} == {"reported"}
    final = client.study(study)
    assert final.state == "done" and final.best is not None
    assert final.best.trial_id == summary.best.trial_id
    assert _states(client, study) == [("complete", 1)] * 4


def test_a_tuner_driven_study(client: Client) -> None:
    study = client.create_study(external_study(tuner="cgld", budget=4, n=3))
    summary = client.run_trials(study, lambda t: objective(t.alpha, t.eps))
    done = client.study(study)
    assert summary.ended == "study done" and done.state == "done"
    assert done.trainings_done == 4 == summary.reported


def test_a_result_with_a_test_value_a_curve_and_divergence(client: Client) -> None:
    study = client.create_study(external_study())

    def train(trial: TrialHandle) -> Result:
        if trial.number == 0:
            return Result(value=90.0, curve=[2.3, float("nan")], diverged=True)
        curve = [1.0 / (k + 1) for k in range(1500)]
        return Result(value=trial.alpha, test_value=2 * trial.alpha, curve=curve)

    client.run_trials(study, train)
    first, second, *_ = client.study_trials(study, curves=True)
    assert first.state == "diverged" and first.diverged and first.curve == [2.3]
    assert second.state == "complete" and second.test_value == 2 * second.alpha
    assert second.curve is not None and len(second.curve) == 1000
    assert second.curve[0] == 1.0 and second.curve[-1] == pytest.approx(1 / 1500)
    assert second.seconds is not None and second.seconds >= 0


def test_heartbeats_keep_a_long_training_alive(client: Client) -> None:
    study = client.create_study(external_study())

    def slow(trial: TrialHandle) -> float:
        trial.progress(3, 7)
        time.sleep(LEASE_SECONDS * 1.8)  # longer than a lease: only heartbeats keep it
        assert not trial.lost
        return 1.0

    summary = client.run_trials(study, slow, max_trials=1)
    assert summary.reported == 1 and summary.refused == 0 and summary.ended == "max_trials"
    [trial] = client.study_trials(study, states=["complete"])
    assert trial.attempts == 1 and trial.progress_done == trial.progress_total == 7


def test_an_exception_is_reported_as_a_failure_and_the_loop_goes_on(client: Client) -> None:
    study = client.create_study(external_study())

    def train(trial: TrialHandle) -> float:
        if (trial.alpha, trial.eps) == (1e-3, 1e-8):
            raise ValueError("loss exploded at step 3")
        return 1.0

    summary = client.run_trials(study, train)
    assert summary.ended == "study done"
    assert summary.failed == 2 and summary.reported == 3  # the server allows two attempts
    trials = client.study_trials(study)
    [failed] = [t for t in trials if (t.alpha, t.eps) == (1e-3, 1e-8)]
    others = [t for t in trials if t is not failed]
    assert (failed.state, failed.attempts) == ("failed", 2)
    assert failed.error is not None and "Traceback" in failed.error
    assert "ValueError: loss exploded at step 3" in failed.error
    assert {t.state for t in others} == {"complete"}
    assert client.study(study).state == "done"


def test_stop_on_error_raises_after_reporting(client: Client) -> None:
    study = client.create_study(external_study())

    def broken(trial: TrialHandle) -> float:
        raise RuntimeError("bug in my loop")

    with pytest.raises(RuntimeError, match="bug in my loop"):
        client.run_trials(study, broken, stop_on_error=True)
    first, *rest = client.study_trials(study)
    assert (
        first.state == "queued" and first.attempts == 1 and "bug in my loop" in (first.error or "")
    )
    assert {(t.state, t.attempts) for t in rest} == {("queued", 0)}


def test_invalid_returns_are_failures(client: Client) -> None:
    study = client.create_study(external_study(n=1) | {"budget": 1})
    summary = client.run_trials(study, lambda t: float("nan"))
    assert summary.failed == 2 and summary.reported == 0 and summary.ended == "study failed"
    [trial] = client.study_trials(study)
    assert trial.state == "failed" and "finite" in (trial.error or "")
    other = client.create_study(external_study("none", n=1) | {"budget": 1})
    client.run_trials(other, lambda t: None, max_trials=1)
    [trial] = client.study_trials(other)
    assert "train_fn returned None" in (trial.error or "") and trial.attempts == 1


def test_the_iterator_reports_and_hands_back(client: Client) -> None:
    study = client.create_study(external_study())
    stream = client.trials(study)
    for trial in stream:
        if trial.number % 2:
            trial.fail("odd trials fail")
        else:
            assert trial.report(objective(trial.alpha, trial.eps))
            with pytest.raises(TrialSettled, match="already reported"):
                trial.report(1.0)
    assert stream.summary.ended == "study done"
    assert stream.summary.reported == 2 and stream.summary.failed == 4
    assert [s for s, _ in _states(client, study)] == ["complete", "failed", "complete", "failed"]


def test_a_body_that_does_not_report_hands_the_trial_back(client: Client) -> None:
    study = client.create_study(external_study())
    numbers = [trial.number for trial in client.trials(study, max_trials=3)]
    assert numbers == [0, 0, 0]  # each released trial is the first in the queue again
    assert _states(client, study) == [("queued", 0)] * 4


def test_break_or_an_exception_hands_the_trial_back(client: Client) -> None:
    study = client.create_study(external_study())
    for trial in client.trials(study):
        assert trial.state == "leased"
        break
    assert trial.state == "released"
    held: list[TrialHandle] = []
    with pytest.raises(ZeroDivisionError):
        for trial in client.trials(study):
            held.append(trial)
            1 / 0  # noqa: B018
    assert [t.state for t in held] == ["released"]
    with client.trials(study) as stream:
        held = next(stream)
    assert held.state == "released" and stream.summary.released == 1
    assert _states(client, study) == [("queued", 0)] * 4


def test_ctrl_c_hands_the_lease_back(client: Client) -> None:
    study = client.create_study(external_study())

    def interrupted(trial: TrialHandle) -> float:
        if trial.number == 1:
            raise KeyboardInterrupt
        return 1.0

    with pytest.raises(KeyboardInterrupt):
        client.run_trials(study, interrupted)
    assert _states(client, study) == [("complete", 1), ("queued", 0), ("queued", 0), ("queued", 0)]


def test_sigterm_hands_the_lease_back_and_stops(client: Client) -> None:
    study = client.create_study(external_study())
    before = signal.getsignal(signal.SIGTERM)

    def terminated(trial: TrialHandle) -> float:
        assert signal.getsignal(signal.SIGTERM) is not before
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler interrupts this
        return 1.0

    started = time.monotonic()
    with pytest.raises(Terminated) as stopped:
        client.run_trials(study, terminated)
    assert stopped.value.code == 143 and time.monotonic() - started < 10
    assert signal.getsignal(signal.SIGTERM) is before  # restored
    assert _states(client, study) == [("queued", 0)] * 4


def test_no_signal_handlers_off_the_main_thread(client: Client) -> None:
    study = client.create_study(external_study())
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def train(trial: TrialHandle) -> float:
        seen.append(signal.getsignal(signal.SIGTERM))
        return 1.0

    thread = threading.Thread(target=lambda: client.run_trials(study, train, max_trials=1))
    thread.start()
    thread.join(30)
    assert seen == [before]
    client.run_trials(study, train, max_trials=1, signals=False)
    assert seen == [before, before]


def test_only_the_studys_own_trials_are_leased(client: Client) -> None:
    other = client.create_study(external_study("older study"))  # its trials queue first
    mine = client.create_study(external_study("mine"))
    studies: list[int] = []

    def train(trial: TrialHandle) -> float:
        studies.append(trial.study_id)
        return 1.0

    summary = client.run_trials(mine, train)
    assert studies == [mine.id] * 4 and summary.ended == "study done"
    assert _states(client, other) == [("queued", 0)] * 4


def test_a_paused_study_waits_and_a_cancelled_one_ends(client: Client) -> None:
    study = client.create_study(external_study())
    client.pause_study(study)
    result: list[object] = []
    thread = threading.Thread(
        target=lambda: result.append(client.run_trials(study, lambda t: 1.0, signals=False))
    )
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive() and _states(client, study) == [("queued", 0)] * 4
    client.resume_study(study)
    thread.join(30)
    assert not thread.is_alive() and client.study(study).state == "done"
    cancelled = client.create_study(external_study("cancelled"))
    client.cancel_study(cancelled)
    summary = client.run_trials(cancelled, lambda t: 1.0)
    assert summary.leased == 0 and summary.ended == "study cancelled"


LOOP_SCRIPT = """
import sys, time
from avatune.client import Client

def train(trial):
    print("training", trial.trial_id, flush=True)
    time.sleep(60)
    return 1.0

try:
    Client(sys.argv[1], sys.argv[2]).run_trials(int(sys.argv[3]), train)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "Ctrl-C"]
)
def test_a_signalled_process_hands_its_lease_back(
    client: Client, server: ThreadServer, signum: int, code: int
) -> None:
    study = client.create_study(external_study())
    process = subprocess.Popen(
        [sys.executable, "-c", LOOP_SCRIPT, server.url, TOKEN, str(study.id)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("training"), "the loop did not start"
        assert [s for s, _ in _states(client, study)].count("leased") == 1
        process.send_signal(signum)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, out
    assert "Traceback" not in out
    assert _states(client, study) == [("queued", 0)] * 4
