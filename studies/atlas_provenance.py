"""Where a long run's results came from: command, commit, machine, and its wall time summed
over every session of a resumed run (kept in a small JSON file beside its database)."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studies.machine import machine


@dataclass
class SessionRecord:
    """One invocation: when it started, when its grids were complete, when it ended."""

    started: float
    commit: str = "unrecorded"
    trained: float | None = None
    ended: float | None = None
    #: Grids this session found unfinished and trained (None: not recorded).
    trained_grids: int | None = None
    outcome: str = "running"


@dataclass
class Session:
    """The sessions of a resumable run, persisted after every change."""

    path: Path
    records: list[SessionRecord] = field(default_factory=list)

    @classmethod
    def start(cls, path: Path) -> Session:
        """Load the earlier sessions (if any) and begin a new one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        records = []
        if path.is_file():
            records = [SessionRecord(**r) for r in json.loads(path.read_text())]
        for record in records:  # a session killed without a word ended when it last wrote
            if record.ended is None:
                record.ended = record.trained or record.started
                record.outcome = "killed"
        session = cls(path, [*records, SessionRecord(started=time.time(), commit=git_commit())])
        session._save()
        return session

    def _save(self) -> None:
        self.path.write_text(json.dumps([asdict(r) for r in self.records], indent=1) + "\n")

    def trained(self, grids: int) -> None:
        """The grids are complete; this session trained `grids` of them."""
        self.records[-1].trained = time.time()
        self.records[-1].trained_grids = grids
        self._save()

    def stop(self) -> None:
        """Interrupted; a later session resumes."""
        self.records[-1].ended, self.records[-1].outcome = time.time(), "stopped"
        self._save()

    def finish(self) -> None:
        """The report is written."""
        self.records[-1].ended, self.records[-1].outcome = time.time(), "finished"
        self._save()

    def total_seconds(self) -> float:
        """Wall time over all sessions (the current one up to now)."""
        now = time.time()
        return sum((r.ended or now) - r.started for r in self.records)

    def training_seconds(self) -> float:
        """Wall time until the grids were complete, over all sessions."""
        now = time.time()
        return sum((r.trained or r.ended or now) - r.started for r in self.records)


def git_commit(folder: Path | None = None) -> str:
    """HEAD's commit, with "+dirty" when tracked files differ; "unknown" outside git."""
    where = str(folder or Path.cwd())
    try:
        commit = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def provenance(command: str, session: Session, server: str) -> dict[str, Any]:
    """The header of a long run's results: the commit(s) its sessions started from."""
    trained = [r.commit for r in session.records if r.trained_grids != 0]
    return {
        "command": command,
        "commit": ", ".join(dict.fromkeys(trained)) or session.records[-1].commit,
        "report_commit": session.records[-1].commit,
        "machine": machine(),
        "server": server,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "started": datetime.fromtimestamp(session.records[0].started, UTC).isoformat(),
        "sessions": len(session.records),
        "training_seconds": round(session.training_seconds(), 1),
        "analysis_seconds": round(session.total_seconds() - session.training_seconds(), 1),
    }
