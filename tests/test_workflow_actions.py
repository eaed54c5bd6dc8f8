"""The actions the workflows use, checked against the facts of their pinned releases, and actionlint.

``tests/data/action-inputs.json`` holds, for each action at the commit SHA the project pins (``owner/name@sha``),
its release tag, the names of its inputs and the inputs that are required without a default (read from that
commit's ``action.yml``). Every ``uses:`` of ``.github/workflows/*.yml`` must be one of those pins with the release in
its trailing comment; every ``with:`` key must be an input of that release, and every required input must be given.
actionlint checks expressions, ``run:`` scripts (through shellcheck) and ``vars.*`` names against
``.github/actionlint.yaml``, but no ``with:`` key of an action pinned by SHA: hence both.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
ACTION_FACTS = Path(__file__).resolve().parent / "data" / "action-inputs.json"
TOOLS = ROOT / ".venv-tools" / "bin"
VERSION_COMMENT = re.compile(r"#\s*(v\d+(?:\.\d+)*)\s*$")


@dataclass(frozen=True)
class Checked:
    problems: list[str]
    pins: int
    with_keys: int


def load_facts() -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = json.loads(ACTION_FACTS.read_text(encoding="utf-8"))["actions"]
    return facts


def _scalar(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def check_actions(name: str, text: str, facts: dict[str, dict[str, Any]]) -> Checked:
    """Every problem of the ``uses:`` steps of one workflow's text, as ``name:line: message``."""
    lines = text.splitlines()
    by_action = {key.split("@")[0]: key for key in facts}
    problems: list[str] = []
    pins = with_keys = 0
    root = yaml.compose(text)
    jobs = _scalar(root, "jobs") if root is not None else None
    assert isinstance(jobs, yaml.MappingNode), f"{name}: no jobs"
    for _, job in jobs.value:
        steps = _scalar(job, "steps")
        for step in steps.value if isinstance(steps, yaml.SequenceNode) else []:
            uses = _scalar(step, "uses")
            if not isinstance(uses, yaml.ScalarNode):
                continue
            where = f"{name}:{uses.start_mark.line + 1}"
            action, _, ref = uses.value.partition("@")
            pin = by_action.get(action)
            if pin is None:
                problems.append(f"{where}: {action} is not one of the pinned actions of {ACTION_FACTS.name}")
                continue
            if uses.value != pin:
                problems.append(f"{where}: {action}@{ref} is not at the pinned commit {pin.split('@')[1]}")
                continue
            pins += 1
            version = facts[pin]["version"]
            comment = VERSION_COMMENT.search(lines[uses.end_mark.line])
            if comment is None or comment.group(1) != version:
                problems.append(f"{where}: {action} needs the trailing comment '# {version}'")
            with_ = _scalar(step, "with")
            given: dict[str, int] = {}
            if isinstance(with_, yaml.MappingNode):
                given = {k.value: k.start_mark.line + 1 for k, _ in with_.value}
            inputs = set(facts[pin]["inputs"])
            for key, line in given.items():
                with_keys += 1
                if key not in inputs:
                    problems.append(f"{name}:{line}: with: {key!r} is not an input of {action} {version}")
            for key in facts[pin]["required"]:
                if key not in given:
                    problems.append(f"{where}: {action} {version} requires the input {key!r}")
    return Checked(problems, pins, with_keys)


def test_action_facts_are_well_formed() -> None:
    facts = load_facts()
    assert len(facts) >= 4
    for key, fact in facts.items():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", key), key
        assert re.fullmatch(r"v\d+\.\d+\.\d+", fact["version"]), key
        assert set(fact["required"]) <= set(fact["inputs"]), key


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_and_called_with_its_inputs(path: Path) -> None:
    checked = check_actions(path.name, path.read_text(encoding="utf-8"), load_facts())
    assert checked.problems == []
    assert checked.pins > 0


def test_the_workflows_check_every_pin_and_with_key() -> None:
    facts = load_facts()
    results = [check_actions(p.name, p.read_text(encoding="utf-8"), facts) for p in WORKFLOW_FILES]
    uses = sum(p.read_text(encoding="utf-8").count("uses:") for p in WORKFLOW_FILES)
    assert sum(r.pins for r in results) == uses  # every uses: line is a checked pin
    assert sum(r.with_keys for r in results) >= uses


_CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"
_UPLOAD = "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f"


def _workflow(step: str) -> str:
    return (
        "on: push\npermissions: {}\njobs:\n  build:\n    runs-on: ubuntu-24.04\n    steps:\n"
        + "\n".join("      " + ln for ln in step.strip("\n").splitlines())
        + "\n"
    )


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            f"- uses: {_CHECKOUT} # v7.0.1\n  with:\n    persist-credential: false",
            "bad.yml:9: with: 'persist-credential' is not an input of actions/checkout v7.0.1",
        ),
        (f"- uses: {_UPLOAD} # v7.0.0\n  with:\n    name: plan", "requires the input 'path'"),
        (f"- uses: {_CHECKOUT}", "needs the trailing comment '# v7.0.1'"),
        (f"- uses: {_CHECKOUT} # v4.2.2", "needs the trailing comment '# v7.0.1'"),
        (
            "- uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
            "is not at the pinned commit 3d3c42e5aac5ba805825da76410c181273ba90b1",
        ),
        ("- uses: actions/chekout@v4", "actions/chekout is not one of the pinned actions"),
    ],
    ids=["misspelled-key", "missing-required", "no-comment", "stale-comment", "old-sha", "unknown-action"],
)
def test_the_action_check_reports(step: str, expected: str) -> None:
    checked = check_actions("bad.yml", _workflow(step), load_facts())
    assert len(checked.problems) == 1, checked.problems
    assert expected in checked.problems[0]


# ---------------------------------------------------------------------------------------------------------------
# actionlint (with shellcheck for run: scripts), from the tools environment
# ---------------------------------------------------------------------------------------------------------------


def _tool(name: str) -> Path:
    path = TOOLS / name
    if not path.exists():  # a missing linter is a broken set-up, never a reason to pass quietly
        pytest.fail(f"{path} is missing: run 'make setup' (requirements/tools.txt installs it into .venv-tools)")
    return path


def actionlint(cwd: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(_tool("actionlint")), "-no-color", f"-shellcheck={_tool('shellcheck')}"]
    argv += ["-config-file", str(cwd / ".github" / "actionlint.yaml"), *(str(f) for f in files)]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    proc = actionlint(ROOT, *WORKFLOW_FILES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_actionlint_config_names_exactly_the_variables_the_workflows_read() -> None:
    config = yaml.safe_load((ROOT / ".github" / "actionlint.yaml").read_text(encoding="utf-8"))
    used = {m for p in WORKFLOW_FILES for m in re.findall(r"\bvars\.(\w+)", p.read_text(encoding="utf-8"))}
    assert sorted(config["config-variables"]) == sorted(used)


def test_actionlint_reports_a_misspelled_variable(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / ".github" / "actionlint.yaml", tmp_path / ".github" / "actionlint.yaml")
    text = (WORKFLOWS / "pr.yml").read_text(encoding="utf-8")
    assert "vars.SMGITOPS_STATE_BUCKET" in text
    bad = tmp_path / ".github" / "workflows" / "pr.yml"
    bad.write_text(text.replace("vars.SMGITOPS_STATE_BUCKET", "vars.SMGITOPS_STATE_BUKET", 1), encoding="utf-8")
    proc = actionlint(tmp_path, bad)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'undefined configuration variable "smgitops_state_buket"' in proc.stdout
    assert proc.stdout.count("[expression]") == 1


def test_actionlint_runs_shellcheck_on_run_scripts(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / ".github" / "actionlint.yaml", tmp_path / ".github" / "actionlint.yaml")
    bad = tmp_path / ".github" / "workflows" / "ci.yml"
    bad.write_text(_workflow("- run: echo $RELEASE"), encoding="utf-8")
    proc = actionlint(tmp_path, bad)
    assert proc.returncode == 1
    assert "SC2086" in proc.stdout


# ---------------------------------------------------------------------------------------------------------------
# ci.yml's provider-currency job: its generated override replaces the roots' exact pin
# ---------------------------------------------------------------------------------------------------------------


def _override_step() -> tuple[dict[str, Any], str]:
    job = yaml.safe_load((WORKFLOWS / "ci.yml").read_text(encoding="utf-8"))["jobs"]["providers"]
    (step,) = [s for s in job["steps"] if "versions_override.tf" in str(s.get("run", ""))]
    return job, str(step["run"])


def test_the_provider_job_covers_both_roots_and_the_newest_majors() -> None:
    job, _ = _override_step()
    assert job["strategy"]["matrix"] == {"root": ["terraform", "bootstrap"], "aws": ["~> 5.0", "~> 6.0"]}
    for root in ("terraform", "bootstrap"):  # the pin an adopter changes on purpose is still exact
        assert 'version = "= 3.39.0"' in (ROOT / root / "versions.tf").read_text(encoding="utf-8")


@pytest.mark.terraform
@pytest.mark.parametrize("root", ["terraform", "bootstrap"])
def test_the_generated_override_replaces_the_pin(tmp_path: Path, root: str) -> None:
    """The job's own script, run here against the local mirror (3.39.0 only): '~> 3.0' validates, '~> 5.0' is
    looked up alone (the override replaced '= 3.39.0' instead of adding to it) and the mirror has no such release."""
    terraform = shutil.which("terraform")
    rc = ROOT / ".cache" / "terraform" / "terraformrc"
    if terraform is None or not rc.exists():
        pytest.fail("terraform on PATH and 'make setup' (the provider mirror) are needed")
    _, script = _override_step()
    shutil.copytree(ROOT / root, tmp_path / root, ignore=shutil.ignore_patterns(".terraform", "*_override.tf"))
    env = {"PATH": f"{Path(terraform).parent}:/usr/bin:/bin", "TF_CLI_CONFIG_FILE": str(rc), "ROOT_DIR": root}
    env["TF_IN_AUTOMATION"] = "1"

    def run(*argv: str, constraint: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=tmp_path, env={**env, "AWS_CONSTRAINT": constraint}, capture_output=True, text=True, check=False
        )

    init = ("terraform", f"-chdir={root}", "init", "-backend=false", "-upgrade", "-input=false", "-no-color")
    assert run("bash", "-eo", "pipefail", "-c", script, constraint="~> 3.0").returncode == 0
    assert run(*init, constraint="~> 3.0").returncode == 0
    valid = run("terraform", f"-chdir={root}", "validate", "-no-color", constraint="~> 3.0")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert run("bash", "-eo", "pipefail", "-c", script, constraint="~> 5.0").returncode == 0
    newer = run(*init, constraint="~> 5.0")
    assert newer.returncode == 1
    assert "no available releases match the given constraints ~> 5.0\n" in newer.stdout + newer.stderr
