"""A fake of GitHub's REST API for one repository, served over HTTP on a free local port.

It implements exactly the endpoints the pipeline uses (``smgitops github-setup`` and ``github-check``; the pull
request comment of ``post-comment``; the revert pull request of ``record``, and ``gh pr create`` in the workflows),
with the status codes and bodies GitHub's REST reference documents (API version 2022-11-28), and keeps the
repository's state so a test can read it, change it behind the command's back, and see every call made:

* ``GET /repos/{o}/{r}``; ``GET /users/{user}``; ``GET /orgs/{org}/teams/{slug}``
* repository variables: ``GET|PATCH .../actions/variables/{name}`` (200 | 204, 404), ``POST .../actions/variables``
  (201, 409 when it exists)
* environments: ``GET|PUT .../environments/{env}`` (PUT: 200; 422 for unknown reviewer ids or both branch policy
  flags true; fields not sent keep their value)
* ``GET|POST .../environments/{env}/deployment-branch-policies`` (POST: 200, 303 when the pattern exists, 404 when the
  environment's ``custom_branch_policies`` is false), ``DELETE .../deployment-branch-policies/{id}`` (204)
* environment variables: ``GET|PATCH .../environments/{env}/variables/{name}``,
  ``POST .../environments/{env}/variables``
* ``GET|PUT .../actions/oidc/customization/sub`` (PUT: 201; 422 for a malformed body)
* ``GET|PUT .../actions/permissions/workflow`` (PUT: 204; 409 when the organization forbids it; 422 malformed)
* ``POST .../pulls`` (201; 422 without base, head and title, or when a pull request of that head is open): the
  pull request keeps who opened it (``user.login``: the login of the token, see ``tokens``)
* issue comments: ``GET .../issues/{n}/comments`` (200; ``per_page`` up to 100, default 30, and a ``Link`` header
  with ``rel="next"`` while pages remain; ``comment_page_size`` caps a page so a test sees pagination with a few
  comments), ``POST .../issues/{n}/comments`` (201; 422 without a string ``body``),
  ``PATCH .../issues/comments/{id}`` (200, 404); ``comments`` holds them by issue number

A request without ``Authorization: Bearer <token>`` (``token``, or one of ``tokens``: token -> login, e.g. a
GitHub App's installation token) gets 401; ``forbid`` makes chosen calls answer 403. ``calls`` records each request
as (method, path with its query string, body).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROUTES: list[tuple[str, str, str]] = [
    ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)", "get_repo"),
    ("GET", r"/users/(?P<user>[^/]+)", "get_user"),
    ("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)", "get_team"),
    ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/actions/variables/(?P<name>[^/]+)", "get_variable"),
    ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/actions/variables", "create_variable"),
    ("PATCH", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/actions/variables/(?P<name>[^/]+)", "update_variable"),
    ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments/(?P<env>[^/]+)", "get_environment"),
    ("PUT", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments/(?P<env>[^/]+)", "put_environment"),
    (
        "GET",
        r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments/(?P<env>[^/]+)/deployment-branch-policies",
        "list_branch_policies",
    ),
    (
        "POST",
        r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments/(?P<env>[^/]+)/deployment-branch-policies",
        "create_branch_policy",
    ),
    (
        "DELETE",
        r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments/(?P<env>[^/]+)/deployment-branch-policies/(?P<id>\d+)",
        "delete_branch_policy",
    ),
    ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments/(?P<env>[^/]+)/variables/(?P<name>[^/]+)", "get_variable"),
    ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments/(?P<env>[^/]+)/variables", "create_variable"),
    (
        "PATCH",
        r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/environments/(?P<env>[^/]+)/variables/(?P<name>[^/]+)",
        "update_variable",
    ),
    ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/actions/oidc/customization/sub", "get_oidc"),
    ("PUT", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/actions/oidc/customization/sub", "put_oidc"),
    ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/actions/permissions/workflow", "get_workflow_permissions"),
    ("PUT", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/actions/permissions/workflow", "put_workflow_permissions"),
    ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/pulls", "create_pull"),
    ("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<number>\d+)/comments", "list_comments"),
    ("POST", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/(?P<number>\d+)/comments", "create_comment"),
    ("PATCH", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/issues/comments/(?P<id>\d+)", "update_comment"),
]
_COMPILED = [(m, re.compile(p + "$"), h) for m, p, h in ROUTES]


@dataclass
class Environment:
    id: int
    name: str
    wait_timer: int = 0
    prevent_self_review: bool = False
    reviewers: list[dict[str, Any]] = field(default_factory=list)  # [{"type": "User"|"Team", "id": N}]
    branch_policy: dict[str, bool] | None = None  # None: deploy from any branch
    branch_policies: list[dict[str, Any]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)


class Answer(Exception):
    def __init__(self, status: int, body: Any = None) -> None:
        self.status, self.body = status, body


def not_found() -> Answer:
    return Answer(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})


def unprocessable(message: str) -> Answer:
    return Answer(422, {"message": "Validation Failed", "errors": [message]})


class FakeGitHub:
    def __init__(self, repository: str, token: str) -> None:
        self.repository, self.token = repository, token
        self.users: dict[str, int] = {}
        self.teams: dict[tuple[str, str], int] = {}
        self.variables: dict[str, str] = {}
        self.environments: dict[str, Environment] = {}
        # GitHub's answers for a repository nobody has configured: default subject, write-all token, no PRs.
        self.oidc: dict[str, Any] = {"use_default": True}
        self.workflow_permissions: dict[str, Any] = {
            "default_workflow_permissions": "write",
            "can_approve_pull_request_reviews": False,
        }
        self.calls: list[tuple[str, str, Any]] = []
        self.tokens: dict[str, str] = {token: "github-actions[bot]"}  # token -> the login it acts as
        self.pulls: list[dict[str, Any]] = []
        self.comments: dict[int, list[dict[str, Any]]] = {}  # issue (pull request) number -> its comments
        self.comment_page_size = 100  # the most comments one page holds, whatever per_page asks
        self._login = ""  # the login of the request being handled
        self._query: dict[str, str] = {}  # the query string of the request being handled
        self._link: str | None = None  # the Link header of the answer: the next page's path and query
        self.forbid: set[tuple[str, str]] = set()  # (method, path) answered 403
        self.admin = True  # the token's user is an admin of the repository
        self.org_locks_workflow_permissions = False  # the owning organization forbids changing them: PUT is 409
        self.next_id = 1000
        self.lock = threading.RLock()

    # -- helpers for tests ------------------------------------------------------------------------------------------

    def add_user(self, login: str) -> int:
        self.next_id += 1
        self.users[login] = self.next_id
        return self.next_id

    def add_team(self, org: str, slug: str) -> int:
        self.next_id += 1
        self.teams[(org, slug)] = self.next_id
        return self.next_id

    def add_comment(self, number: int, body: str, *, login: str = "someone") -> dict[str, Any]:
        """A comment on issue (pull request) ``number`` by ``login``, as if made outside the test."""
        with self.lock:
            return self._comment(number, body, login)

    def writes(self) -> list[tuple[str, str, Any]]:
        return [c for c in self.calls if c[0] != "GET"]

    # -- dispatch ---------------------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, auth: str | None, body: Any) -> tuple[int, Any]:
        """Answer one request (``target``: the path with its query string) with (status, JSON document)."""
        with self.lock:
            self.calls.append((method, target, body))
            path, _, query = target.partition("?")
            self._query = dict(urllib.parse.parse_qsl(query))
            self._link = None
            login = self.tokens.get(auth.removeprefix("Bearer ")) if auth and auth.startswith("Bearer ") else None
            if login is None:
                return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
            if (method, path) in self.forbid:
                return 403, {"message": "Resource not accessible by personal access token"}
            for m, pattern, handler in _COMPILED:
                match = pattern.match(path)
                if m == method and match:
                    params = match.groupdict()
                    if "o" in params and f"{params['o']}/{params['r']}" != self.repository:
                        return 404, {"message": "Not Found"}
                    self._login = login
                    try:
                        result = getattr(self, handler)(body=body, **params)
                    except Answer as answer:
                        return answer.status, answer.body
                    return result
            return 404, {"message": "Not Found"}

    def respond(self, method: str, target: str, auth: str | None, body: Any) -> tuple[int, Any, str | None]:
        """:meth:`handle`, and the path and query of the next page when the answer is a page with more after it."""
        with self.lock:
            status, doc = self.handle(method, target, auth, body)
            return status, doc, self._link

    # -- endpoints --------------------------------------------------------------------------------------------------

    def get_repo(self, *, body: Any, o: str, r: str) -> tuple[int, Any]:
        return 200, {"full_name": self.repository, "permissions": {"admin": self.admin, "push": True, "pull": True}}

    def get_user(self, *, body: Any, user: str) -> tuple[int, Any]:
        if user not in self.users:
            raise not_found()
        return 200, {"login": user, "id": self.users[user], "type": "User"}

    def get_team(self, *, body: Any, org: str, slug: str) -> tuple[int, Any]:
        if (org, slug) not in self.teams:
            raise not_found()
        return 200, {"slug": slug, "name": slug, "id": self.teams[(org, slug)]}

    def _store(self, o: str, r: str, env: str | None) -> dict[str, str]:
        if env is None:
            return self.variables
        if env not in self.environments:
            raise not_found()
        return self.environments[env].variables

    def get_variable(self, *, body: Any, o: str, r: str, name: str, env: str | None = None) -> tuple[int, Any]:
        store = self._store(o, r, env)
        if name not in store:
            raise not_found()
        return 200, {"name": name, "value": store[name], "created_at": "2026-01-01T00:00:00Z"}

    def create_variable(self, *, body: Any, o: str, r: str, env: str | None = None) -> tuple[int, Any]:
        store = self._store(o, r, env)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("name"), str)
            or not isinstance(body.get("value"), str)
        ):
            raise unprocessable("name and value are required strings")
        if body["name"] in store:
            raise Answer(409, {"message": "Already exists - Variable already exists"})
        store[body["name"]] = body["value"]
        return 201, None

    def update_variable(self, *, body: Any, o: str, r: str, name: str, env: str | None = None) -> tuple[int, Any]:
        store = self._store(o, r, env)
        if name not in store:
            raise not_found()
        if not isinstance(body, dict) or not isinstance(body.get("value", ""), str):
            raise unprocessable("value must be a string")
        new_name = body.get("name", name)
        value = body.get("value", store[name])
        del store[name]
        store[new_name] = value
        return 204, None

    def _environment_doc(self, env: Environment) -> dict[str, Any]:
        rules: list[dict[str, Any]] = []
        if env.wait_timer:
            rules.append({"id": env.id + 1, "type": "wait_timer", "wait_timer": env.wait_timer})
        if env.reviewers:
            reviewers = []
            for rv in env.reviewers:
                if rv["type"] == "User":
                    login = next(k for k, v in self.users.items() if v == rv["id"])
                    reviewers.append({"type": "User", "reviewer": {"login": login, "id": rv["id"], "type": "User"}})
                else:
                    slug = next(k[1] for k, v in self.teams.items() if v == rv["id"])
                    reviewers.append({"type": "Team", "reviewer": {"slug": slug, "id": rv["id"]}})
            rules.append(
                {
                    "id": env.id + 2,
                    "type": "required_reviewers",
                    "prevent_self_review": env.prevent_self_review,
                    "reviewers": reviewers,
                }
            )
        if env.branch_policy is not None:
            rules.append({"id": env.id + 3, "type": "branch_policy"})
        return {
            "id": env.id,
            "name": env.name,
            "url": f"https://api.github.com/repos/{self.repository}/environments/{env.name}",
            "protection_rules": rules,
            "deployment_branch_policy": env.branch_policy,
        }

    def get_environment(self, *, body: Any, o: str, r: str, env: str) -> tuple[int, Any]:
        if env not in self.environments:
            raise not_found()
        return 200, self._environment_doc(self.environments[env])

    def put_environment(self, *, body: Any, o: str, r: str, env: str) -> tuple[int, Any]:
        body = body or {}
        if not isinstance(body, dict):
            raise unprocessable("body must be an object")
        reviewers = body.get("reviewers")
        if reviewers is not None:
            if not isinstance(reviewers, list) or len(reviewers) > 6:
                raise unprocessable("reviewers: at most 6")
            for rv in reviewers:
                known = self.users.values() if rv.get("type") == "User" else self.teams.values()
                if rv.get("type") not in ("User", "Team") or rv.get("id") not in known:
                    raise unprocessable(f"reviewer {rv} does not exist")
        policy = body.get("deployment_branch_policy", ...)
        if policy is not ... and policy is not None:
            if set(policy) != {"protected_branches", "custom_branch_policies"} or not all(
                isinstance(v, bool) for v in policy.values()
            ):
                raise unprocessable("deployment_branch_policy needs protected_branches and custom_branch_policies")
            if policy["protected_branches"] == policy["custom_branch_policies"]:
                raise unprocessable("exactly one of protected_branches and custom_branch_policies must be true")
        if env not in self.environments:
            self.next_id += 10
            self.environments[env] = Environment(id=self.next_id, name=env)
        e = self.environments[env]
        if "wait_timer" in body:
            e.wait_timer = int(body["wait_timer"])
        if "prevent_self_review" in body:
            e.prevent_self_review = bool(body["prevent_self_review"])
        if reviewers is not None:
            e.reviewers = [{"type": rv["type"], "id": rv["id"]} for rv in reviewers]
        if policy is not ...:
            e.branch_policy = dict(policy) if policy is not None else None
            if not (policy or {}).get("custom_branch_policies"):
                e.branch_policies = []
        return 200, self._environment_doc(e)

    def _custom(self, env: str) -> Environment:
        e = self.environments.get(env)
        if e is None or not (e.branch_policy or {}).get("custom_branch_policies"):
            raise not_found()
        return e

    def list_branch_policies(self, *, body: Any, o: str, r: str, env: str) -> tuple[int, Any]:
        if env not in self.environments:
            raise not_found()
        policies = self.environments[env].branch_policies
        return 200, {"total_count": len(policies), "branch_policies": policies}

    def create_branch_policy(self, *, body: Any, o: str, r: str, env: str) -> tuple[int, Any]:
        e = self._custom(env)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise unprocessable("name is required")
        kind = body.get("type", "branch")
        if kind not in ("branch", "tag"):
            raise unprocessable("type must be branch or tag")
        for p in e.branch_policies:
            if p["name"] == body["name"] and p["type"] == kind:
                raise Answer(303, p)
        self.next_id += 1
        policy = {"id": self.next_id, "node_id": f"BP_{self.next_id}", "name": body["name"], "type": kind}
        e.branch_policies.append(policy)
        return 200, policy

    def delete_branch_policy(self, *, body: Any, o: str, r: str, env: str, id: str) -> tuple[int, Any]:
        e = self._custom(env)
        before = len(e.branch_policies)
        e.branch_policies = [p for p in e.branch_policies if p["id"] != int(id)]
        if len(e.branch_policies) == before:
            raise not_found()
        return 204, None

    def get_oidc(self, *, body: Any, o: str, r: str) -> tuple[int, Any]:
        return 200, dict(self.oidc)

    def put_oidc(self, *, body: Any, o: str, r: str) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("use_default"), bool):
            raise unprocessable("use_default is required")
        keys = body.get("include_claim_keys")
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(k, str) and re.match(r"^[A-Za-z0-9_]+$", k) for k in keys)
        ):
            raise unprocessable("include_claim_keys: alphanumeric strings and underscores")
        self.oidc = {"use_default": body["use_default"]}
        if not body["use_default"] and keys is not None:
            self.oidc["include_claim_keys"] = list(keys)
        return 201, None

    def get_workflow_permissions(self, *, body: Any, o: str, r: str) -> tuple[int, Any]:
        return 200, dict(self.workflow_permissions)

    def put_workflow_permissions(self, *, body: Any, o: str, r: str) -> tuple[int, Any]:
        if self.org_locks_workflow_permissions:
            raise Answer(409, {"message": "Conflict"})
        body = body or {}
        perms = body.get("default_workflow_permissions", self.workflow_permissions["default_workflow_permissions"])
        approve = body.get(
            "can_approve_pull_request_reviews", self.workflow_permissions["can_approve_pull_request_reviews"]
        )
        if perms not in ("read", "write") or not isinstance(approve, bool):
            raise unprocessable("default_workflow_permissions: read or write; can_approve_pull_request_reviews: bool")
        self.workflow_permissions = {"default_workflow_permissions": perms, "can_approve_pull_request_reviews": approve}
        return 204, None

    def create_pull(self, *, body: Any, o: str, r: str) -> tuple[int, Any]:
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("base", "head", "title")):
            raise unprocessable("base, head and title are required strings")
        if any(p["head"]["ref"] == body["head"] and p["state"] == "open" for p in self.pulls):
            raise unprocessable(f"A pull request already exists for {body['head']}.")
        self.next_id += 1
        number = len(self.pulls) + 1
        pull = {
            "id": self.next_id,
            "number": number,
            "state": "open",
            "title": body["title"],
            "body": body.get("body") or "",
            "head": {"ref": body["head"], "label": f"{o}:{body['head']}"},
            "base": {"ref": body["base"], "label": f"{o}:{body['base']}"},
            "user": {"login": self._login},
            "html_url": f"https://github.com/{self.repository}/pull/{number}",
        }
        self.pulls.append(pull)
        return 201, pull

    def _comment(self, number: int, body: str, login: str) -> dict[str, Any]:
        self.next_id += 1
        comment = {
            "id": self.next_id,
            "body": body,
            "user": {"login": login, "type": "Bot" if login.endswith("[bot]") else "User"},
            "html_url": f"https://github.com/{self.repository}/pull/{number}#issuecomment-{self.next_id}",
        }
        self.comments.setdefault(number, []).append(comment)
        return comment

    def list_comments(self, *, body: Any, o: str, r: str, number: str) -> tuple[int, Any]:
        items = self.comments.get(int(number), [])
        try:
            per_page = min(int(self._query.get("per_page", "30")), 100, self.comment_page_size)
            page = int(self._query.get("page", "1"))
        except ValueError:
            raise unprocessable("per_page and page are integers") from None
        if per_page < 1 or page < 1:
            raise unprocessable("per_page and page are at least 1")
        if page * per_page < len(items):
            query = urllib.parse.urlencode({**self._query, "page": page + 1})
            self._link = f"/repos/{o}/{r}/issues/{number}/comments?{query}"
        return 200, items[(page - 1) * per_page : page * per_page]

    def create_comment(self, *, body: Any, o: str, r: str, number: str) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            raise unprocessable("body is a required string")
        return 201, self._comment(int(number), body["body"], self._login)

    def update_comment(self, *, body: Any, o: str, r: str, id: str) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            raise unprocessable("body is a required string")
        for comment in (c for comments in self.comments.values() for c in comments):
            if comment["id"] == int(id):
                comment["body"] = body["body"]
                return 200, comment
        raise not_found()

    # -- HTTP -------------------------------------------------------------------------------------------------------

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    status, doc, link = 400, {"message": "Problems parsing JSON"}, None
                else:
                    auth = self.headers.get("Authorization")
                    status, doc, link = fake.respond(self.command, self.path, auth, body)
                data = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                if status == 303:
                    self.send_header("Location", f"http://{self.headers.get('Host')}{self.path}/{doc['id']}")
                if link is not None:
                    self.send_header("Link", f'<http://{self.headers.get("Host")}{link}>; rel="next"')
                if data:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

        return Handler


@contextmanager
def serve(fake: FakeGitHub) -> Iterator[str]:
    """Serve ``fake`` on a free port of 127.0.0.1; yields the API base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
