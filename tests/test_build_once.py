"""tests.workflow.build_once, which lets pytest-xdist workers share the session's finished
workflow (tests/conftest.py): processes asking at once get one build between them, and a failed
build fails the others at once instead of being built again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One process asking for the shared result; the build takes a while and counts its calls.
ASK = """
import json, sys, time
from pathlib import Path
from tests.workflow import SharedBuildError, build_once

shared, fail = Path(sys.argv[1]), sys.argv[2] == "fail"

def build():
    with open(shared / "builds.txt", "a") as fh:
        fh.write("1\\n")
    time.sleep(1.0)
    if fail:
        raise RuntimeError("no digits today")
    return {"work": str(shared / "wf"), "n": 42}

try:
    print(json.dumps(build_once(shared, "thing", build)))
except SharedBuildError as error:
    print(json.dumps({"shared error": str(error)}))
except RuntimeError as error:
    print(json.dumps({"own error": str(error)}))
"""


def _ask_together(shared: Path, mode: str, n: int = 3) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, "-c", ASK, str(shared), mode], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def test_processes_asking_together_share_one_build(tmp_path):
    results = _ask_together(tmp_path, "ok")
    assert results == [{"work": str(tmp_path / "wf"), "n": 42}] * 3
    assert (tmp_path / "builds.txt").read_text() == "1\n"  # built once, not three times


def test_a_failed_build_fails_the_others_without_building_again(tmp_path):
    results = _ask_together(tmp_path, "fail")
    assert (tmp_path / "builds.txt").read_text() == "1\n"
    assert sorted(map(str, results)).count(str({"own error": "no digits today"})) == 1
    shared = [r["shared error"] for r in results if "shared error" in r]
    assert len(shared) == 2
    assert all("the shared thing failed to build" in e and "no digits today" in e
               for e in shared)
