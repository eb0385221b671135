"""docs/ci-workflow.yml acted out: it installs this project (by its own distribution name, or a git
URL of it: here a local clone), and its harness steps pass as written on a small project."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = yaml.safe_load((ROOT / "docs" / "ci-workflow.yml").read_text())
STEPS = [step["run"] for step in WORKFLOW["jobs"]["harness"]["steps"] if "run" in step]


def test_the_workflow_installs_this_project_by_its_own_name():
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert name != "harness"  # on PyPI, harness is someone else's project
    assert WORKFLOW["env"]["HARNESS_SOURCE"] == name
    assert 'pip install "$HARNESS_SOURCE"' in STEPS


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_install_step_builds_this_project_from_a_git_url(tmp_path):
    """`pip install "$HARNESS_SOURCE"` with the git URL form, from a local clone: the wheel is this
    project's (the harness package and its command), nothing else."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    source = f"git+file://{clone}"  # (pip reads "name @ git+file://..." as a path; https URLs take the name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "w"),
                           source], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "w").glob("*.whl")
    assert wheel.name.startswith("exactgradcheck-")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "harness/cli.py" in names and "harness/schema/case.schema.json" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "harness = harness.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_the_harness_steps_pass_as_written(tmp_path, monkeypatch):
    """The steps after the installs, run with the shell on a project of two tutorial case files and its
    committed baseline, for each shard of the matrix."""
    project = tmp_path / "project"
    (project / "cases").mkdir(parents=True)
    for name in ("step1_backward.yaml", "step5_6_two_inputs.yaml"):  # (three cases: the time is the processes')
        shutil.copy(ROOT / "cases" / "tutorial" / name, project / "cases" / name)
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    comment = (ROOT / "docs" / "ci-workflow.yml").read_text()  # the baseline, made as its comment says
    assert "harness run cases --update-baseline reports/baseline.json" in comment
    from harness.cli import main

    monkeypatch.chdir(project)  # (in this process: the steps below are the shell commands)
    assert main("run cases --update-baseline reports/baseline.json".split()) == 0
    for shard in WORKFLOW["jobs"]["harness"]["strategy"]["matrix"]["shard"]:
        for step in STEPS:
            if step.startswith("pip install"):
                continue  # the installs: the test above, and this environment
            command = step.replace("${{ matrix.shard }}", str(shard))
            done = subprocess.run(command, shell=True, cwd=project, env=env, capture_output=True, text=True,
                                  timeout=600)
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("passed, 0 failed") == 2
