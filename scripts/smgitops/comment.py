"""``smgitops comment``: the one pull-request comment per environment, updated in place.

It puts together what a reviewer needs to approve a release change: the release diff in words (models added and
removed with their digests, weights before → after), the traffic split before and after as mermaid pie charts
(GitHub renders them), the Terraform plan summary, the policy results and the cost until the evening teardown.

Inputs: the plan summary (``smgitops plan --json F``), optionally the policy report (``smgitops policy --json F``);
the cost is estimated from the release file the summary names (``smgitops.pricing``).

Rendering and posting are separate jobs in the pull-request workflow: the plan job (AWS credentials, read-only
GitHub token) renders with ``--markdown F`` and uploads ``F`` as an artifact; the comment job (``pull-requests:
write``, no AWS credentials, no set-up: it runs ``python -m smgitops.cli`` from the base revision's checkout) posts
it with ``smgitops post-comment DIR``, which only reads Markdown files that start with an environment's marker.

``--post`` finds the pull request's comment that starts with the hidden marker ``<!-- smgitops:<environment> -->``
through the GitHub REST API and updates it, or creates it: one comment per environment however often the
workflow runs. It reads ``GITHUB_API_URL``, ``GITHUB_REPOSITORY``, ``GITHUB_TOKEN`` and the pull-request number
from the event file ``GITHUB_EVENT_PATH``. ``--summary`` appends the same Markdown to ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ExternalError, UserError

MAX_BODY = 65_000  # GitHub refuses comment bodies over 65,536 characters
_LABEL_UNSAFE = re.compile(r'["\\\n\r`]')


def marker(environment: str) -> str:
    return f"<!-- smgitops:{environment} -->"


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value} %"


def _short(digest: Any) -> str:
    return f"`{str(digest)[:12]}`" if digest else "(unknown digest)"


def _pie(title: str, slices: Sequence[tuple[str, Any]]) -> list[str]:
    shown = [(name, weight) for name, weight in slices if isinstance(weight, (int, float)) and weight > 0]
    if not shown:
        return []
    lines = ["```mermaid", f"pie showData title {title}"]
    for name, weight in shown:
        lines.append(f'    "{_LABEL_UNSAFE.sub("", name)}" : {weight}')
    lines.append("```")
    return lines


def _diff_lines(summary: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for m in summary.get("models_added") or []:
        lines.append(f"- **Model added:** `{m.get('id')}` {_short(m.get('digest'))} as `{m.get('name')}`")
    for m in summary.get("models_removed") or []:
        lines.append(f"- **Model removed:** `{m.get('id')}` {_short(m.get('digest'))} (`{m.get('name')}`)")
    for v in summary.get("variants") or []:
        before, after = v.get("weight_before"), v.get("weight_after")
        if before == after:
            continue
        if before is None:
            what = f"new variant at {_pct(after)}"
        elif after is None:
            what = f"removed (was {_pct(before)})"
        else:
            what = f"{_pct(before)} → {_pct(after)}"
        lines.append(f"- **Traffic:** variant `{v.get('name')}` (`{v.get('model')}` {_short(v.get('digest'))}): {what}")
    for m in summary.get("artifacts_to_publish") or []:
        lines.append(f"- **Published at merge:** `{m.get('id')}` {_short(m.get('digest'))} (not in the store yet)")
    cfg = summary.get("endpoint_config") or {}
    if cfg.get("before") != cfg.get("after"):
        lines.append(f"- **Endpoint configuration:** `{cfg.get('before') or '(none yet)'}` → `{cfg.get('after')}`")
    if summary.get("endpoint_change"):
        from .plan import endpoint_change_text

        lines.append(f"- **Endpoint:** {endpoint_change_text(summary['endpoint_change'])}")
    if not lines:
        lines.append("- No change to models or traffic.")
    return lines


def _variants_table(summary: Mapping[str, Any]) -> list[str]:
    lines = ["| variant | model | SageMaker model | digest | before | after |", "|---|---|---|---|---|---|"]
    for v in summary.get("variants") or []:
        before, after = v.get("weight_before"), v.get("weight_after")
        after_text = _pct(after) if before == after else f"**{_pct(after)}**"
        lines.append(
            f"| `{v.get('name')}` | `{v.get('model')}` | `{v.get('model_name')}` | {_short(v.get('digest'))} "
            f"| {_pct(before)} | {after_text} |"
        )
    return lines


def _plan_lines(summary: Mapping[str, Any]) -> list[str]:
    r = summary.get("resources") or {}
    if summary.get("no_changes"):
        return ["**Plan:** no changes. The live infrastructure matches the release."]
    lines = [
        f"**Plan:** {r.get('add', 0)} to add, {r.get('change', 0)} to change, {r.get('destroy', 0)} to destroy"
        + (f" ({r.get('replace', 0)} replaced)" if r.get("replace") else "")
    ]
    changes = r.get("changes") or []
    if changes:
        lines += ["", f"<details><summary>{len(changes)} resource change(s)</summary>", ""]
        lines += [f"- `{'/'.join(c.get('actions') or [])}` `{c.get('address')}`" for c in changes]
        lines += ["", "</details>"]
    return lines


def _policy_lines(policy: Mapping[str, Any] | None) -> list[str]:
    if policy is None:
        return ["**Policy:** not run."]
    ck = policy.get("checkov") or None
    detail = ""
    if ck:
        detail = (
            f" — checkov {ck.get('version', '')}: {ck.get('passed', 0)} passed, {ck.get('failed', 0)} failed, "
            f"{len(ck.get('skipped') or [])} skipped with reasons"
        )
    findings = policy.get("findings") or []
    if policy.get("ok") and not findings:
        rules = ", ".join(policy.get("release_rules") or [])
        return [f"**Policy:** ✅ passed{detail}" + (f"; release policy {rules}: ok" if rules else "") + "."]
    lines = [f"**Policy:** ❌ {len(findings)} finding{'s' if len(findings) != 1 else ''}{detail}", ""]
    lines += ["| check | resource | where | finding |", "|---|---|---|---|"]
    for f in findings:
        text = str(f.get("title", "")) + (f" — {f.get('detail')}" if f.get("detail") else "")
        text = text.replace("|", "\\|")
        lines.append(f"| `{f.get('check_id')}` | {f.get('resource') or ''} | {f.get('where') or ''} | {text} |")
    return lines


def _cost_lines(cost: Mapping[str, Any] | None) -> list[str]:
    if cost is None:
        return ["**Cost:** not estimated."]
    until = f"{cost.get('teardown_at')} {cost.get('timezone')}"
    if cost.get("past_teardown"):
        return [f"**Cost until teardown ({until}):** $0.00 — today's teardown time has passed."]
    per = (
        f"{cost.get('hours')} h × {cost.get('instance_count')} × `{cost.get('instance_type')}` × "
        f"{cost.get('variants')} variant{'s' if cost.get('variants') != 1 else ''}"
        f" = {cost.get('instance_hours')} instance-hours"
    )
    if cost.get("usd") is None:
        return [f"**Cost until teardown ({until}):** unknown — {per}; {cost.get('note')}"]
    caveat = "" if cost.get("price_confirmed") else ", price unconfirmed"
    line = (
        f"**Cost until teardown ({until}):** **${cost['usd']:.2f}** — {per} × ${cost.get('usd_per_instance_hour')}/h "
        f"(on-demand, price table of {cost.get('price_as_of')}{caveat})"
    )
    notes = []
    if cost.get("variants_serving") != cost.get("variants"):
        notes.append("variants at weight 0 still run (and bill) their instances")
    return [line + (f". Note: {'; '.join(notes)}." if notes else "")]


def render_markdown(
    summary: dict[str, Any], *, policy: dict[str, Any] | None = None, cost: dict[str, Any] | None = None
) -> str:
    """The pull-request comment for one environment (Markdown, starting with its hidden marker)."""
    env = str(summary.get("environment", ""))
    variants = summary.get("variants") or []
    lines = [
        marker(env),
        f"### smgitops · `{env}` · `{summary.get('release')}` → endpoint `{summary.get('endpoint')}`",
        "",
        *_diff_lines(summary),
        "",
        "#### Traffic",
        "",
    ]
    before = _pie("Traffic before", [(str(v.get("name")), v.get("weight_before")) for v in variants])
    after = _pie("Traffic after", [(str(v.get("name")), v.get("weight_after")) for v in variants])
    lines += before if before else ["_Before: no endpoint serves this release yet._"]
    lines += [""] + after + [""]
    lines += _variants_table(summary) + [""]
    lines += [
        f"Instances: {summary.get('instance_count')} × `{summary.get('instance_type')}` per variant.",
        "",
        "#### Plan, policy and cost",
        "",
    ]
    lines += _plan_lines(summary) + [""]
    lines += _policy_lines(policy) + [""]
    lines += _cost_lines(cost) + [""]
    lines.append(
        f"<sub>plan `{summary.get('plan_file')}` · generated {summary.get('generated_at')} · "
        "this comment is updated in place on every push</sub>"
    )
    body = "\n".join(lines) + "\n"
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 80] + "\n\n… (truncated: the full plan is in the job summary)\n"
    return body


# ---------------------------------------------------------------------------------------------------------------
# GitHub
# ---------------------------------------------------------------------------------------------------------------

Opener = Callable[[urllib.request.Request], Any]


class GitHub:
    """The three issue-comment calls the comment needs, with urllib (no client library)."""

    def __init__(self, api_url: str, repository: str, token: str, opener: Opener | None = None) -> None:
        self.api = api_url.rstrip("/")
        self.repository = repository
        self.token = token
        self.opener: Opener = opener or (lambda req: urllib.request.urlopen(req, timeout=30))  # noqa: S310

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, str]]:
        url = path if path.startswith("http") else f"{self.api}{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", "smgitops")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self.opener(req) as resp:
                raw = resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise ExternalError(f"GitHub API {method} {url}: HTTP {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            raise ExternalError(f"GitHub API {method} {url}: {exc.reason}") from exc
        return (json.loads(raw) if raw else None), headers

    def comments(self, number: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = f"/repos/{self.repository}/issues/{number}/comments?per_page=100"
        while url:
            page, headers = self._call("GET", url)
            out += list(page or [])
            url = _next_link(headers.get("link", ""))
        return out

    def create(self, number: int, body: str) -> dict[str, Any]:
        result, _ = self._call("POST", f"/repos/{self.repository}/issues/{number}/comments", {"body": body})
        return dict(result)

    def update(self, comment_id: int, body: str) -> dict[str, Any]:
        result, _ = self._call("PATCH", f"/repos/{self.repository}/issues/comments/{comment_id}", {"body": body})
        return dict(result)

    def create_pull(self, *, base: str, head: str, title: str, body: str) -> dict[str, Any]:
        payload = {"base": base, "head": head, "title": title, "body": body}
        result, _ = self._call("POST", f"/repos/{self.repository}/pulls", payload)
        return dict(result)


def _next_link(link: str) -> str | None:
    for part in link.split(","):
        m = re.match(r'\s*<([^>]+)>;\s*rel="next"', part)
        if m:
            return m.group(1)
    return None


def pull_request_number(event_path: str | os.PathLike[str]) -> int:
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{event_path}: cannot read the GitHub event file ({exc})") from exc
    for key in ("pull_request", "issue"):
        number = (event.get(key) or {}).get("number")
        if isinstance(number, int):
            return number
    if isinstance(event.get("number"), int):
        return int(event["number"])
    raise UserError(f"{event_path}: not a pull-request event (no pull_request.number)")


def post(body: str, environment: str, *, env: Mapping[str, str], opener: Opener | None = None) -> dict[str, Any]:
    """Update the PR's comment carrying this environment's marker, or create it. Returns what was done."""
    missing = [k for k in ("GITHUB_REPOSITORY", "GITHUB_TOKEN", "GITHUB_EVENT_PATH") if not env.get(k)]
    if missing:
        raise UserError(f"--post needs {', '.join(missing)} in the environment (set by GitHub Actions)")
    number = pull_request_number(env["GITHUB_EVENT_PATH"])
    gh = GitHub(
        env.get("GITHUB_API_URL") or "https://api.github.com", env["GITHUB_REPOSITORY"], env["GITHUB_TOKEN"], opener
    )
    tag = marker(environment)
    ours = [c for c in gh.comments(number) if str(c.get("body") or "").startswith(tag)]
    ours.sort(key=lambda c: ((c.get("user") or {}).get("type") != "Bot", int(c.get("id", 0))))
    if ours:
        done = gh.update(int(ours[0]["id"]), body)
        action = "updated"
    else:
        done = gh.create(number, body)
        action = "created"
    return {"action": action, "id": done.get("id"), "url": done.get("html_url"), "pull_request": number}


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"{path}: no such {what} file") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: the {what} must be a JSON object")
    return data


_SUMMARY_KEYS = ("release", "environment", "endpoint", "endpoint_config", "variants", "resources", "no_changes")


def configure_comment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan_json", type=Path, metavar="PLAN_JSON", help="plan summary from `smgitops plan --json`")
    parser.add_argument("--policy", type=Path, default=None, metavar="F", help="report from `smgitops policy --json`")
    parser.add_argument(
        "--release",
        type=Path,
        default=None,
        help="release file for the cost estimate (default: the one the summary names)",
    )
    parser.add_argument("--now", default=None, help="ISO-8601 instant with offset for the cost estimate (default: now)")
    parser.add_argument("--markdown", type=Path, default=None, metavar="F", help="also write the Markdown to F")
    parser.add_argument("--post", action="store_true", help="create or update the pull request's comment")
    parser.add_argument("--summary", action="store_true", help="append the Markdown to $GITHUB_STEP_SUMMARY")
    parser.add_argument("--json", type=Path, default=None, metavar="F", help="write what was posted as JSON to F")


_MARKER = re.compile(r"^<!-- smgitops:([a-z0-9][a-z0-9-]{0,62}) -->$")


def configure_post_comment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", type=Path, metavar="DIR", help="directory of comments rendered by `smgitops comment --markdown`"
    )


def run_post_comment(args: argparse.Namespace) -> int:
    """Post every ``DIR/*.md`` (one per environment, each starting with its marker) to the pull request."""
    files = sorted(args.directory.glob("*.md")) if args.directory.is_dir() else []
    bodies: list[tuple[str, str]] = []
    for path in files:
        body = path.read_text(encoding="utf-8", errors="replace")
        m = _MARKER.match(body.split("\n", 1)[0])
        if m is None:
            raise UserError(f"{path}:1: not a smgitops comment (the first line must be <!-- smgitops:ENV -->)")
        if len(body) > MAX_BODY:
            raise UserError(f"{path}: {len(body)} characters, more than a comment holds ({MAX_BODY})")
        bodies.append((m.group(1), body))
    if not bodies:
        print(f"smgitops post-comment: no comment in {args.directory} (no plan got far enough to render one)")
        return 0
    for environment, body in bodies:
        done = post(body, environment, env=os.environ)
        print(f"comment {environment} {done['action']}: {done['url'] or done['id']}")
    return 0


def run_comment(args: argparse.Namespace) -> int:
    from .clock import parse_instant, utc_now

    summary = _read_json(args.plan_json, "plan summary")
    missing = [k for k in _SUMMARY_KEYS if k not in summary]
    if missing:
        raise UserError(f"{args.plan_json}: not a plan summary (missing {', '.join(missing)})")
    policy = _read_json(args.policy, "policy report") if args.policy is not None else None
    now: datetime = parse_instant(args.now) if args.now else utc_now()

    cost: dict[str, Any] | None = None
    release_path = args.release or Path(str(summary["release"]))
    if release_path.is_file():
        from .pricing import estimate_cost
        from .release import load_release

        cost = estimate_cost(load_release(release_path), now)
    elif args.release is not None:
        raise UserError(f"{args.release}: no such release file")
    else:
        print(f"smgitops comment: {release_path} not found from {Path.cwd()}; no cost estimate", file=sys.stderr)

    body = render_markdown(summary, policy=policy, cost=cost)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(body, encoding="utf-8")
    if args.summary:
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if not step_summary:
            raise UserError("--summary needs GITHUB_STEP_SUMMARY in the environment (set by GitHub Actions)")
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(body + "\n")
    result: dict[str, Any] = {"environment": summary["environment"], "posted": None}
    if args.post:
        result["posted"] = post(body, str(summary["environment"]), env=os.environ)
        print(f"comment {result['posted']['action']}: {result['posted']['url'] or result['posted']['id']}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not (args.post or args.summary or args.markdown):
        sys.stdout.write(body)
    return 0
