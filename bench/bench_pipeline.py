"""Benchmark: the pipeline's own speed against the targets of the structure-and-speed issue, in one run.

On a private emulator with real Terraform, in a scratch git repository (the checkout's roots, the dev release
trained for real), each command runs as the CLI in its own process, as in a workflow step. A PATH shim in front of
``terraform`` and a tool-home shim in front of checkov's Python log every child process's start and end; in local mode a
command starts the AWS provider its Terraform processes attach to (smgitops.tfprovider), and ``SMGITOPS_TRACE`` logs
that start (from the spawn to the provider's answer) the same way; the emulator logs when it was serving the
command's AWS requests (admin ``busy``). Two figures per command, measured, not estimated:

* *beyond processes*: its wall time minus the time covered by the Terraform/checkov processes and the provider's
  start (their union: concurrent ones count once);
* *own overhead*: that, minus also the time the emulator was serving the command's AWS requests and endpoint
  invocations (the smoke and canary traffic of ``deploy``, the bootstrap check of local mode): what is left is
  smgitops's own: Python's start and imports, making clients, reading and writing files, its logic. The target
  is judged on this one: against AWS, time spent waiting on AWS is the service's, as Terraform's is Terraform's.

Figures (each printed as a ratio to its target; below 1.00 meets it):

* overhead per command (validate, plan, apply, verify, policy, deploy): <= 0.3 s;
* ``smgitops plan`` <= 1.2 x (``terraform plan -out`` + ``terraform show -json``) on the same root and state;
* ``smgitops deploy``: the plan-after-apply check runs alongside smoke and canary (the report shows whether the
  check's time overlapped them: deploy wall vs the sum of its parts);
* ``smgitops demo`` (``make demo`` after set-up) <= 30 s, with its Terraform processes by sub-command;
* teardown of 1,000 endpoints <= 30 s and <= 3 API calls per endpoint (``bench_teardown.sweep``).

    .venv/bin/python bench/bench_pipeline.py [--rounds N] [--endpoints N] [--no-demo] [--no-teardown]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

from smgitops.emulator.server import Emulator  # noqa: E402

OVERHEAD_TARGET = 0.3  # seconds per command beyond its Terraform/checkov processes
PLAN_RATIO_TARGET = 1.2  # smgitops plan / (terraform plan + terraform show -json)
DEMO_TARGET = 30.0  # seconds, make demo after set-up
TEARDOWN_TARGET = 30.0  # seconds for 1,000 endpoints
TEARDOWN_CALLS_TARGET = 3.0  # API calls per endpoint
# deploys judge the teardown cut-off (19:30 Berlin) at 10:00 today there, whenever the bench runs
NOW = datetime.combine(
    datetime.now(ZoneInfo("Europe/Berlin")).date(), dt_time(10, 0), ZoneInfo("Europe/Berlin")
).isoformat()
IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@smgitops.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@smgitops.invalid",
}

_SHIM = """#!/bin/bash
# bench_pipeline: log this process's start and end, then answer as {real} does
started=$EPOCHREALTIME
{real} "$@"
rc=$?
if [ -n "$SMGITOPS_BENCH_LOG" ]; then
  printf '%s %s %s %s\\n' "$started" "$EPOCHREALTIME" "{name}" "${{1:-}}" >> "$SMGITOPS_BENCH_LOG"
fi
exit $rc
"""


@dataclass
class Child:
    start: float
    end: float
    tool: str
    command: str


def covered(intervals: Sequence[tuple[float, float]]) -> float:
    """Seconds covered by at least one of ``intervals`` (their union)."""
    total, reach = 0.0, float("-inf")
    for begin, end in sorted(intervals):
        start = max(begin, reach)
        if end > start:
            total += end - start
        reach = max(reach, end)
    return total


@dataclass
class Measured:
    name: str
    wall: float
    children: list[Child]
    api_calls: int
    stdout: str = ""
    aws: list[tuple[float, float]] = field(default_factory=list)  # when the emulator served the command's requests

    @property
    def child_seconds(self) -> float:
        """Time covered by at least one child process or the provider's start (their union)."""
        return covered([(c.start, c.end) for c in self.children])

    @property
    def overhead(self) -> float:
        """Wall time beyond the Terraform/checkov processes (and the provider's start)."""
        return self.wall - self.child_seconds

    @property
    def aws_seconds(self) -> float:
        """Time waiting on AWS only: covered by an AWS request and by no process."""
        return covered([(c.start, c.end) for c in self.children] + self.aws) - self.child_seconds

    @property
    def own(self) -> float:
        """The command's own time: beyond its processes and beyond the AWS requests it waited for."""
        return self.overhead - self.aws_seconds

    def processes(self) -> Counter[str]:
        return Counter(f"{c.tool} {c.command}".strip() for c in self.children)


@dataclass
class Bench:
    tmp: Path
    emulator: Any
    env: dict[str, str] = field(default_factory=dict)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        shims = self.tmp / "shims"
        home = self.tmp / "home"
        (home / ".venv-tools" / "bin").mkdir(parents=True)
        shims.mkdir()
        # a tool home whose checkov Python is the shim; the rest is the checkout's (the demo copies its roots from here)
        for name in (".cache", "releases", "data", "terraform", "bootstrap", "policies"):
            if (ROOT / name).exists():
                (home / name).symlink_to(ROOT / name)
        real_tf = shutil.which("terraform")
        if real_tf is None:
            raise SystemExit("terraform not on PATH")
        # smgitops runs checkov through its launcher with the tool environment's Python (smgitops.policy): the shim
        # is that Python, in a tool home that is a virtual environment as the checkout's is
        tools = ROOT / ".venv-tools"
        (home / ".venv-tools" / "pyvenv.cfg").symlink_to(tools / "pyvenv.cfg")
        (home / ".venv-tools" / "bin" / "checkov").symlink_to(tools / "bin" / "checkov")
        for path, real, name in (
            (shims / "terraform", real_tf, "terraform"),
            (home / ".venv-tools" / "bin" / "python", str(tools / "bin" / "python"), "checkov"),
        ):
            path.write_text(_SHIM.format(real=real, name=name), encoding="utf-8")
            path.chmod(0o755)
        self.log = self.tmp / "children.log"
        self.env = {
            **os.environ,
            **self.emulator.env(),
            **IDENTITY,
            "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
            "SMGITOPS_HOME": str(home),
            "SMGITOPS_LOCAL_DIR": str(self.tmp / "local"),
            "SMGITOPS_PROGRESS": "quiet",
            "SMGITOPS_BENCH_LOG": str(self.log),
            "SMGITOPS_TRACE": str(self.log),  # the shared provider's start, in the shim's format
        }

    def children(self) -> list[Child]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            parts = line.split(" ")
            out.append(Child(float(parts[0]), float(parts[1]), parts[2], parts[3] if len(parts) > 3 else ""))
        self.log.unlink()
        return out

    def api_calls(self) -> int:
        return int(self.emulator.admin.stats()["aws_requests"])

    def run(self, name: str, argv: Sequence[str], cwd: Path, *, ok: Sequence[int] = (0,)) -> Measured:
        self.children()  # forget what ran before
        calls = self.api_calls()
        started = time.time()
        proc = subprocess.run(list(argv), cwd=cwd, env=self.env, capture_output=True, text=True, check=False)
        ended = time.time()
        if proc.returncode not in ok:
            raise SystemExit(f"{name} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        aws = [(max(a, started), min(b, ended)) for a, b in self.emulator.admin.busy(since=started) if a < ended]
        return Measured(name, ended - started, self.children(), self.api_calls() - calls, proc.stdout, aws)

    def smgitops(self, name: str, *args: str, cwd: Path) -> Measured:
        return self.run(name, [str(ROOT / ".venv" / "bin" / "smgitops"), *args], cwd)


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **IDENTITY}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def scratch_repo(dest: Path) -> tuple[str, str]:
    """A git repository with the checkout's roots; returns the dev release as A (sampling 100 %) and B (50 %):
    B replaces the endpoint configuration and updates the endpoint, the change a weight shift makes."""
    ignore = shutil.ignore_patterns(".terraform", "*_override.tf", "*.tfstate*", "*.tfplan", "__pycache__")
    for name in ("releases", "data", "terraform", "bootstrap", "policies"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    (dest / ".gitignore").write_text("/out/\n/.smgitops/\n*_override.tf\n.terraform/\n", encoding="utf-8")
    text_a = (dest / "releases" / "dev.yaml").read_text(encoding="utf-8")
    text_b = text_a.replace("sampling_percentage: 100", "sampling_percentage: 50")
    assert text_a != text_b
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", ".")
    git(dest, "commit", "-q", "-m", "release A")
    return text_a, text_b


def commit_release(repo: Path, text: str, message: str) -> None:
    (repo / "releases" / "dev.yaml").write_text(text, encoding="utf-8")
    git(repo, "commit", "-q", "--allow-empty", "-am", message)


def bare_plan(bench: Bench, repo: Path, plan_json: Path) -> Measured:
    """``terraform plan -out`` + ``terraform show -json`` in smgitops's working copy, as smgitops plan runs them
    (same flags, same variables), through the same shim: the floor ``smgitops plan`` is compared with."""
    from smgitops.context import Context
    from smgitops.release import load_release

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(bench.env)
    # as a person runs them: each command starts its own AWS provider (not local mode's shared one, which this
    # process would already have started, and which smgitops plan starts within its own time)
    os.environ["SMGITOPS_SHARED_PROVIDER"] = "0"
    try:
        ws = Context.for_release(release := load_release(repo / "releases" / "dev.yaml")).workspace(release)
        ws.prepare()
        bench.children()
        planfile = ws.directory / "bare.tfplan"
        started = time.time()
        ws.terraform.plan(out=planfile, variables=ws.variables(), lock=True)
        ws.terraform.show_json(planfile)
        wall = time.time() - started
        planfile.unlink()
        # the JSON of smgitops's saved plan, for smgitops policy --plan-json (not timed)
        plan_json.write_text(json.dumps(ws.terraform.show_json(ws.default_plan_file)), encoding="utf-8")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    children = [c for c in bench.children() if c.start < started + wall]
    m = Measured("terraform plan + show -json", wall, children, 0)
    return Measured(m.name, m.child_seconds, m.children, 0)


def deploy_overlap(m: Measured) -> tuple[float, float, float]:
    """(the plan-after-apply's terraform plan, how much of it ran while smoke, traffic and canary did, their time).

    The deploy's steps give durations only: smoke starts when the apply step ends, which is taken as the apply
    process's start plus the apply step's seconds (the step began a little earlier: the overlap is a lower bound)."""
    steps = {s["name"]: float(s["seconds"]) for s in json.loads(m.stdout)["steps"]}
    applies = [c for c in m.children if c.command == "apply"]
    plans = [c for c in m.children if c.command == "plan" and applies and c.start >= applies[0].start]
    if not applies or not plans:
        return 0.0, 0.0, 0.0
    rest = sum(steps.get(name, 0.0) for name in ("smoke", "traffic", "canary"))
    begin = applies[0].start + steps["apply"]
    plan = plans[0]
    overlap = max(0.0, min(plan.end, begin + rest) - max(plan.start, begin))
    return plan.end - plan.start, overlap, rest


def row(m: Measured) -> str:
    procs = ", ".join(f"{n}x {k}" for k, n in sorted(m.processes().items())) or "none"
    return (
        f"{m.name:<10} wall {m.wall:6.2f} s  processes {m.child_seconds:5.2f} s  beyond them {m.overhead:5.2f} s  "
        f"AWS {m.aws_seconds:5.2f} s  own {m.own:5.2f} s (ratio {m.own / OVERHEAD_TARGET:4.2f} of "
        f"{OVERHEAD_TARGET} s)  AWS calls {m.api_calls:4d}  "
        f"processes: {procs}"
    )


def pipeline(bench: Bench, rounds: int) -> tuple[list[str], dict[str, list[Measured]], list[float]]:
    repo = bench.tmp / "repo"
    repo.mkdir()
    text_a, text_b = scratch_repo(repo)
    release = "releases/dev.yaml"
    lines: list[str] = []
    started = time.time()
    bench.smgitops("train", "train", release, cwd=repo)
    bench.smgitops("publish", "publish", release, cwd=repo)  # local mode: bootstraps the emulator on first use
    # the first deploy of A (creates the endpoint; not measured)
    bench.smgitops("plan", "plan", release, cwd=repo)
    bench.smgitops(
        "deploy",
        "deploy",
        release,
        "--plan",
        ".smgitops/work/dev/dev.tfplan",
        "--traffic",
        "400",
        "--now",
        NOW,
        cwd=repo,
    )
    lines.append(f"set-up (train, bootstrap, publish, first deploy): {time.time() - started:.1f} s")

    from smgitops.release import load_release
    from smgitops.rollout import traffic_for_canary

    traffic = str(traffic_for_canary(load_release(repo / release)))
    by_name: dict[str, list[Measured]] = {}
    plan_ratios: list[float] = []
    for n in range(1, rounds + 1):
        measured: list[Measured] = []
        # A -> B with plan + apply (+ verify), B -> A with plan + deploy; policy on the plan of B
        commit_release(repo, text_b, f"round {n}: B")
        measured.append(bench.smgitops("validate", "validate", release, cwd=repo))
        plan = bench.smgitops("plan", "plan", release, "--json", cwd=repo)
        measured.append(plan)
        plan_json = bench.tmp / "plan.json"
        bare = bare_plan(bench, repo, plan_json)
        plan_ratios.append(plan.wall / bare.wall)
        bench.children()
        measured.append(bench.smgitops("policy", "policy", release, "--plan-json", str(plan_json), cwd=repo))
        measured.append(bench.smgitops("apply", "apply", release, "--json", cwd=repo))
        measured.append(bench.smgitops("verify", "verify", release, cwd=repo))
        commit_release(repo, text_a, f"round {n}: A")
        bench.smgitops("plan", "plan", release, cwd=repo)
        deploy = bench.smgitops(
            "deploy",
            "deploy",
            release,
            "--plan",
            ".smgitops/work/dev/dev.tfplan",
            "--traffic",
            traffic,
            "--now",
            NOW,
            "--json",
            cwd=repo,
        )
        measured.append(deploy)
        doc = json.loads(deploy.stdout)
        steps = {s["name"]: s["seconds"] for s in doc["steps"]}
        lines.append(
            f"round {n}: plan {plan.wall:.2f} s vs terraform plan + show -json {bare.wall:.2f} s "
            f"(ratio {plan.wall / bare.wall:.2f}); deploy steps: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in steps.items())
            + f"; deploy wall {deploy.wall:.2f} s"
        )
        for m in measured:
            by_name.setdefault(m.name, []).append(m)
            lines.append("  " + row(m))
    return lines, by_name, plan_ratios


def demo(bench: Bench) -> tuple[float, float, Counter[str]]:
    report = bench.tmp / "demo.json"
    env = {k: v for k, v in bench.env.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.pop("SMGITOPS_LOCAL_DIR", None)
    from bench_demo import run_demo

    bench.children()
    wall, doc = run_demo(report, env)
    children = bench.children()
    counts = Counter(f"{c.tool} {c.command}".strip() for c in children)
    return wall, float(doc["seconds"]), counts  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--endpoints", type=int, default=1000, help="endpoints the teardown sweep deletes")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--no-teardown", action="store_true")
    args = parser.parse_args()
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="smgitops-bench-pipeline-") as tmp, Emulator().start() as emulator:
        emulator.admin.set_update_delay(0)  # Terraform's provider polls Creating/Updating endpoints every 30 s
        bench = Bench(Path(tmp), emulator)
        lines, by_name, plan_ratios = pipeline(bench, args.rounds)
        print("\n".join(lines), flush=True)
        summary.append(f"median of {args.rounds} rounds; target ratios: below 1.00 meets the target")
        for name, ms in by_name.items():
            own = statistics.median(m.own for m in ms)
            beyond = statistics.median(m.overhead for m in ms)
            waited = statistics.median(m.aws_seconds for m in ms)
            wall = statistics.median(m.wall for m in ms)
            calls = statistics.median(m.api_calls for m in ms)
            procs = ", ".join(f"{n}x {k}" for k, n in sorted(ms[0].processes().items())) or "none"
            summary.append(
                f"overhead  {name:<9} own {own:5.2f} s  ratio {own / OVERHEAD_TARGET:4.2f} (target <= "
                f"{OVERHEAD_TARGET} s); of {wall:6.2f} s wall, {beyond:5.2f} s beyond processes, {waited:5.2f} s "
                f"waiting on AWS ({calls:.0f} calls); processes: {procs}"
            )
        pr = statistics.median(plan_ratios)
        summary.append(
            f"plan      smgitops plan / (terraform plan + show -json) = {pr:.2f}  ratio {pr / PLAN_RATIO_TARGET:4.2f} "
            f"(target <= {PLAN_RATIO_TARGET})"
        )
        deploys = by_name["deploy"]
        overlaps = [deploy_overlap(m) for m in deploys]
        summary.append(
            f"deploy    wall {statistics.median(m.wall for m in deploys):.2f} s; plan after apply (terraform plan) "
            f"{statistics.median(o[0] for o in overlaps):.2f} s, of which at least "
            f"{statistics.median(o[1] for o in overlaps):.2f} s ran alongside smoke, traffic and canary "
            f"({statistics.median(o[2] for o in overlaps):.2f} s); target: they overlap"
        )
        if not args.no_demo:
            wall, reported, counts = demo(bench)
            procs = ", ".join(f"{n}x {k}" for k, n in sorted(counts.items()))
            summary.append(
                f"demo      wall {wall:.1f} s (demo reports {reported:.1f} s)  ratio {wall / DEMO_TARGET:4.2f} "
                f"(target <= {DEMO_TARGET:.0f} s)  {sum(counts.values())} processes: {procs}"
            )
        if not args.no_teardown:
            from bench_teardown import sweep
            from smgitops.aws import TEARDOWN_WORKERS

            os.environ.update(emulator.env())
            seconds, requests = sweep(emulator, args.endpoints, TEARDOWN_WORKERS)
            per = requests / args.endpoints
            summary.append(
                f"teardown  {args.endpoints} endpoints {seconds:.1f} s  ratio "
                f"{seconds / (TEARDOWN_TARGET * args.endpoints / 1000):4.2f} (target <= 30 s per 1,000); "
                f"{per:.2f} AWS calls per endpoint  ratio {per / TEARDOWN_CALLS_TARGET:4.2f} (target <= 3)"
            )
    load = os.getloadavg()[0]
    summary.append(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the end")
    print("\n== summary")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
