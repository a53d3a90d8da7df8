"""reproduce_cifar.sh's stage names: every ``STAGES="..."`` command quoted in the docs names
stages that exist (the script refuses unknown names, which would otherwise be skipped
silently), and the script's order puts a run's export after the run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

TRAIN = Path(__file__).resolve().parents[1]
REPO = TRAIN.parent
SCRIPT = TRAIN / "scripts" / "reproduce_cifar.sh"
DOCS = [REPO / "README.md", REPO / "docs" / "RESULTS.md", TRAIN / "snapshots" / "README.md"]


def check(stages: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, STAGES=stages, STAGES_CHECK_ONLY="1", RUNS="/nonexistent")
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=60)


def documented_stage_lists() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for m in re.finditer(r'STAGES="([^"]*)"|STAGES=([a-z0-9_]+)', text):
            words = " ".join((m.group(1) or m.group(2)).split())  # commands wrap across lines
            if "..." not in words:
                found.append((doc.relative_to(REPO).as_posix(), words))
    return found


def test_docs_quote_stage_commands():
    assert len(documented_stage_lists()) >= 15


@pytest.mark.parametrize("doc,stages", documented_stage_lists())
def test_documented_stages_exist(doc, stages):
    r = check(stages)
    assert r.returncode == 0, f"{doc}: {r.stderr}"


def test_unknown_stage_is_refused():
    r = check("sepnet_r sepnet_b_ste_kd_long_shp")
    assert r.returncode == 2
    assert "no stage named 'sepnet_b_ste_kd_long_shp'" in r.stderr


def test_each_export_comes_after_its_run():
    lines = [ln for ln in SCRIPT.read_text().splitlines() if not ln.lstrip().startswith("#")]
    first = {}
    for i, ln in enumerate(lines):
        for name in re.findall(r"(?:^|[^a-z_])has ([a-z0-9_]+)", ln.split(" #")[0]):
            first.setdefault(name, i)
    pairs = [(n, n[: -len("_export")]) for n in first if n.endswith("_export") and n[: -len("_export")] in first]
    assert len(pairs) >= 10
    for export, run in pairs:
        assert first[run] < first[export], f"{export} comes before {run}"
