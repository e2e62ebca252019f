"""One owner per data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pymta.datalock import DataDirLock, DataDirLocked


def test_a_second_holder_is_refused_until_the_first_releases(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    with pytest.raises(DataDirLocked):
        DataDirLock(tmp_path).acquire()
    first.release()
    with DataDirLock(tmp_path):
        pass


def test_the_lock_holds_across_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from pymta.datalock import DataDirLock;"
        f"DataDirLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True);"
        "sys.stdin.readline()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    with pytest.raises(DataDirLocked):
        DataDirLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    with DataDirLock(tmp_path):
        pass
