"""Build a C source file beside this module into a cached shared library and load it.

The library is compiled once per machine (``-march=native``, OpenMP: the process shares
torch's ``libgomp`` and its threads) with the system C compiler, the one torch.compile
already needs on CPU, and cached under ``AVATUNE_CACHE_DIR`` (default
``~/.cache/avatune``) by a hash of the source, the headers beside it, flags and compiler.
Without a compiler, `load` returns None and callers use their portable path.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

FLAGS = (
    "-O3",
    "-march=native",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fopenmp",
    "-shared",
    "-fPIC",
)


def cache_dir() -> Path:
    """Where compiled libraries are kept."""
    root = os.environ.get("AVATUNE_CACHE_DIR") or Path.home() / ".cache" / "avatune"
    return Path(root) / "kernels"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and (path := shutil.which(name)):
            return path
    return None


def _texts(source: Path) -> list[str]:
    """The source and the package's headers: what a build depends on."""
    headers = sorted(source.parent.glob("*.h"))
    return [path.read_text() for path in (source, *headers)]


@cache
def load(source_name: str) -> ctypes.CDLL | None:
    """The compiled library for `source_name` (a .c file in this package, or the path of
    one elsewhere), or None."""
    source = Path(source_name) if os.sep in source_name else Path(__file__).with_name(source_name)
    compiler = _compiler()
    if compiler is None:
        log.warning(
            "no C compiler found: %s is not built; its callers use another path", source_name
        )
        return None
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, check=False
    ).stdout
    key = hashlib.sha256(
        "\0".join([*_texts(source), *FLAGS, version, platform.machine()]).encode()
    ).hexdigest()[:16]
    target = cache_dir() / f"{source.stem}-{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        build = subprocess.run(
            [compiler, *FLAGS, str(source), "-o", partial, "-lm"],
            capture_output=True,
            text=True,
            check=False,
        )
        if build.returncode != 0:
            os.unlink(partial)
            log.warning(
                "compiling %s failed; its callers use another path:\n%s", source_name, build.stderr
            )
            return None
        os.replace(partial, target)  # atomic: concurrent workers never load a partial file
    return ctypes.CDLL(str(target))
