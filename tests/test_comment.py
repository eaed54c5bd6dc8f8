"""The pull-request comment: what it says, and that --post keeps exactly one comment per environment."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from smgitops import comment
from smgitops.cli import main

ROOT = Path(__file__).resolve().parents[1]
DIGEST_A = "a1" * 32
DIGEST_B = "b2" * 32


def canary_summary() -> dict[str, Any]:
    return {
        "release": "releases/dev.yaml",
        "environment": "dev",
        "endpoint": "smgitops-dev",
        "endpoint_config": {"before": "smgitops-dev-1a2b3c4d", "after": "smgitops-dev-5e6f7a8b"},
        "variants": [
            {
                "name": "primary",
                "model": "logreg",
                "model_name": f"logreg-{DIGEST_A[:12]}",
                "digest": DIGEST_A,
                "weight_before": 100,
                "weight_after": 90,
            },
            {
                "name": "canary",
                "model": "forest",
                "model_name": f"forest-{DIGEST_B[:12]}",
                "digest": DIGEST_B,
                "weight_before": None,
                "weight_after": 10,
            },
        ],
        "models_added": [{"id": "forest", "digest": DIGEST_B, "name": f"forest-{DIGEST_B[:12]}"}],
        "models_removed": [],
        "resources": {
            "add": 2,
            "change": 1,
            "destroy": 1,
            "replace": 1,
            "changes": [
                {"address": 'aws_sagemaker_model.this["forest"]', "actions": ["create"]},
                {"address": "aws_sagemaker_endpoint_configuration.this", "actions": ["create", "delete"]},
                {"address": "aws_sagemaker_endpoint.this", "actions": ["update"]},
            ],
        },
        "instance_type": "ml.t2.large",
        "instance_count": 1,
        "no_changes": False,
        "plan_file": ".smgitops/work/dev/dev.tfplan",
        "generated_at": "2026-11-25T14:30:00+00:00",
    }


POLICY_OK = {
    "ok": True,
    "findings": [],
    "release_rules": ["RP001", "RP002", "RP003", "RP004"],
    "checkov": {"version": "3.3.30", "passed": 214, "failed": 0, "skipped": [{"id": "CKV_AWS_144"}]},
}
POLICY_BAD = {
    "ok": False,
    "release_rules": ["RP001"],
    "checkov": None,
    "findings": [
        {
            "source": "release",
            "check_id": "RP001",
            "title": "models never served before get more than the canary cap",
            "resource": "canary=forest",
            "where": "releases/dev.yaml",
            "detail": "20 % to new models; cap 10 %",
        }
    ],
}
COST = {
    "instance_type": "ml.t2.large",
    "instance_count": 1,
    "variants": 2,
    "variants_serving": 2,
    "teardown_at": "19:30",
    "timezone": "Europe/Berlin",
    "past_teardown": False,
    "hours": 4.0,
    "instance_hours": 8.0,
    "usd_per_instance_hour": 0.13,
    "usd": 1.04,
    "price_confirmed": False,
    "price_as_of": "2026-11-25",
    "note": "",
}


def mermaid_blocks(body: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", body, flags=re.S)


def test_the_comment_tells_the_whole_change() -> None:
    body = comment.render_markdown(canary_summary(), policy=POLICY_OK, cost=COST)
    assert body.startswith("<!-- smgitops:dev -->\n")
    # release diff in words, with digests
    assert f"**Model added:** `forest` `{DIGEST_B[:12]}`" in body
    assert "variant `primary` (`logreg` `a1a1a1a1a1a1`): 100 % → 90 %" in body
    assert "variant `canary`" in body and "new variant at 10 %" in body
    assert "`smgitops-dev-1a2b3c4d` → `smgitops-dev-5e6f7a8b`" in body
    # traffic before and after as pie charts
    before, after = mermaid_blocks(body)
    assert before.startswith("pie showData title Traffic before") and '"primary" : 100' in before
    assert "canary" not in before
    assert '"primary" : 90' in after and '"canary" : 10' in after
    # plan, policy, cost
    assert "**Plan:** 2 to add, 1 to change, 1 to destroy (1 replaced)" in body
    assert "`create/delete` `aws_sagemaker_endpoint_configuration.this`" in body
    assert "**Policy:** ✅ passed — checkov 3.3.30: 214 passed, 0 failed, 1 skipped with reasons" in body
    assert "**$1.04**" in body and "8.0 instance-hours" in body and "price unconfirmed" in body


def test_policy_findings_and_unknown_cost_are_shown_not_hidden() -> None:
    summary = canary_summary()
    no_price = dict(COST, usd=None, note="no real-time inference price for ml.t3.large")
    body = comment.render_markdown(summary, policy=POLICY_BAD, cost=no_price)
    assert "**Policy:** ❌ 1 finding" in body
    assert "| `RP001` | canary=forest | releases/dev.yaml | models never served before" in body
    assert "unknown" in body and "ml.t3.large" in body
    assert "**Policy:** not run." in comment.render_markdown(summary)
    assert "**Cost:** not estimated." in comment.render_markdown(summary)


def test_a_new_endpoint_and_no_changes() -> None:
    summary = canary_summary()
    for v in summary["variants"]:
        v["weight_before"] = None
    summary["endpoint_config"]["before"] = None
    body = comment.render_markdown(summary)
    assert "_Before: no endpoint serves this release yet._" in body
    assert len(mermaid_blocks(body)) == 1
    quiet = canary_summary()
    quiet["variants"][1]["weight_before"] = 10
    quiet["variants"][0]["weight_before"] = 90
    quiet["models_added"] = []
    quiet["endpoint_config"]["before"] = quiet["endpoint_config"]["after"]
    quiet["no_changes"] = True
    body = comment.render_markdown(quiet)
    assert "No change to models or traffic." in body and "**Plan:** no changes." in body


def test_past_teardown_costs_nothing_in_words() -> None:
    body = comment.render_markdown(canary_summary(), cost=dict(COST, past_teardown=True, usd=0.0, hours=0.0))
    assert "$0.00 — today's teardown time has passed" in body


# ---------------------------------------------------------------------------------------------------------------
# --post against a local fake of the GitHub REST API
# ---------------------------------------------------------------------------------------------------------------


class FakeGitHub:
    """Issue comments of one repository, served like api.github.com (pagination by Link header)."""

    def __init__(self, repository: str, token: str, page_size: int = 2) -> None:
        self.repository, self.token, self.page_size = repository, token, page_size
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.next_id = 1000
        self.lock = threading.Lock()

    def add(self, number: int, body: str, user_type: str = "User") -> dict[str, Any]:
        with self.lock:
            self.next_id += 1
            c = {
                "id": self.next_id,
                "body": body,
                "user": {"login": "someone", "type": user_type},
                "html_url": f"https://github.invalid/{self.repository}/pull/{number}#issuecomment-{self.next_id}",
            }
            self.comments.setdefault(number, []).append(c)
            return c

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, data: Any, headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _route(self, method: str) -> None:
                fake.requests.append((method, self.path))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(401, {"message": "Bad credentials"})
                prefix = f"/repos/{fake.repository}/issues/"
                path, _, query = self.path.partition("?")
                if not path.startswith(prefix):
                    return self._send(404, {"message": "Not Found"})
                rest = path[len(prefix) :].split("/")
                body = None
                if method in ("POST", "PATCH"):
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if method == "GET" and len(rest) == 2 and rest[1] == "comments":
                    items = fake.comments.get(int(rest[0]), [])
                    params = dict(p.split("=") for p in query.split("&") if p)
                    page = int(params.get("page", "1"))
                    chunk = items[(page - 1) * fake.page_size : page * fake.page_size]
                    headers = {}
                    if page * fake.page_size < len(items):
                        nxt = f"http://{self.headers['Host']}{path}?per_page=100&page={page + 1}"
                        headers["Link"] = f'<{nxt}>; rel="next"'
                    return self._send(200, chunk, headers)
                if method == "POST" and len(rest) == 2 and rest[1] == "comments":
                    return self._send(201, fake.add(int(rest[0]), body["body"], user_type="Bot"))
                if method == "PATCH" and rest[0] == "comments":
                    for items in fake.comments.values():
                        for c in items:
                            if c["id"] == int(rest[1]):
                                c["body"] = body["body"]
                                return self._send(200, c)
                return self._send(404, {"message": "Not Found"})

            def do_GET(self) -> None:  # noqa: N802
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._route("POST")

            def do_PATCH(self) -> None:  # noqa: N802
                self._route("PATCH")

        return Handler


@pytest.fixture()
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub("octo/models", "t0ken")
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def pr_env(tmp_path: Path, github: tuple[FakeGitHub, str], monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    fake, url = github
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 7, "pull_request": {"number": 7}}))
    for k, v in {
        "GITHUB_API_URL": url,
        "GITHUB_REPOSITORY": "octo/models",
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }.items():
        monkeypatch.setenv(k, v)
    return fake


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_post_creates_then_updates_one_comment(tmp_path: Path, pr_env: FakeGitHub) -> None:
    fake = pr_env
    # other people's comments, some mentioning smgitops, across several pages
    fake.add(7, "LGTM")
    fake.add(7, "what does <!-- smgitops:dev --> mean?")  # not at the start: not ours
    fake.add(7, "<!-- smgitops:prod -->\nthe prod comment")
    summary = _write(tmp_path, "plan.json", canary_summary())
    policy = _write(tmp_path, "policy.json", POLICY_OK)
    out = tmp_path / "posted.json"
    args = [
        "comment",
        str(summary),
        "--policy",
        str(policy),
        "--post",
        "--summary",
        "--json",
        str(out),
        "--now",
        "2026-11-25T14:30:00Z",
    ]
    assert main(args) == 0
    first = json.loads(out.read_text())["posted"]
    assert first["action"] == "created" and first["pull_request"] == 7
    assert main(args) == 0
    second = json.loads(out.read_text())["posted"]
    assert second == dict(first, action="updated")

    ours = [c for c in fake.comments[7] if c["body"].startswith("<!-- smgitops:dev -->")]
    assert len(ours) == 1 and ours[0]["id"] == first["id"]
    assert "pie showData title Traffic after" in ours[0]["body"]
    assert "**Cost until teardown (19:30 Europe/Berlin):**" in ours[0]["body"]  # 15:30 in Berlin: 4 h left
    assert fake.comments[7][2]["body"] == "<!-- smgitops:prod -->\nthe prod comment"  # untouched
    assert [m for m, _ in fake.requests].count("POST") == 1 and [m for m, _ in fake.requests].count("PATCH") == 1
    assert any("page=2" in p for _, p in fake.requests)  # followed the Link header
    # the job summary got the same Markdown, once per run
    assert (tmp_path / "summary.md").read_text().count("<!-- smgitops:dev -->") == 2


def test_post_errors_are_reported(
    tmp_path: Path, pr_env: FakeGitHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _write(tmp_path, "plan.json", canary_summary())
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    assert main(["comment", str(summary), "--post"]) == 1
    assert "HTTP 401" in capsys.readouterr().err
    monkeypatch.delenv("GITHUB_TOKEN")
    assert main(["comment", str(summary), "--post"]) == 2
    assert "GITHUB_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(_write(tmp_path, "push.json", {"ref": "refs/heads/main"})))
    assert main(["comment", str(summary), "--post"]) == 2
    assert "not a pull-request event" in capsys.readouterr().err


def test_bad_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["comment", str(tmp_path / "missing.json")]) == 2
    bad = _write(tmp_path, "bad.json", {"release": "x"})
    assert main(["comment", str(bad)]) == 2
    assert "not a plan summary" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert main(["comment", str(tmp_path / "broken.json")]) == 2
