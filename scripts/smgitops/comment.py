"""``smgitops comment``: the one pull-request comment per environment, updated in place.

It puts together what a reviewer needs to approve a release change: the release diff in words (models added and
removed with their digests, weights before → after); one monospace picture of the traffic before → after; for
each model that gains traffic its held-out metrics (accuracy, f1, roc_auc from the training manifest in its
archive) beside those of the model(s) it takes traffic from, with the difference, and its estimator and parameter
changes; for a release promoted from another environment (prod, from dev) each served digest's last canary there,
or the override that lets it through (release policy RP005); the canary thresholds the merge will enforce; the
Terraform plan summary; the policy results; the cost per day and per month at the new weights, the change against
the base and today's hours until teardown; links to the workflow run and the commit. Values read as the release
file writes them (``null``, ``true``), never as Python's; no local path is shown.

Inputs: the plan summary (``smgitops plan --json F``), optionally the policy report (``smgitops policy --json F``);
the release file the summary names (cost, thresholds, models); with ``--base-rev REV`` the base release from git
(what traffic moves from, parameter changes, cost change); the archives ``smgitops train`` wrote (metrics; with
``--store`` also the artifact store); the canary evidence kept with the good tags (:mod:`smgitops.record`).

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

import hashlib
import io
import json
import os
import re
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ExternalError, UserError

if TYPE_CHECKING:
    from .context import Context

MAX_BODY = 65_000  # GitHub refuses comment bodies over 65,536 characters


def marker(environment: str) -> str:
    return f"<!-- smgitops:{environment} -->"


MARKER_LINE = re.compile(r"^<!-- smgitops:([a-z0-9][a-z0-9-]{0,62}) -->$")  # a marker line; group 1 the environment


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------


def human(value: Any) -> str:
    """A value as the release file writes it (``true``, ``null``, ``[a, b]``, ``{a: 1}``), never Python's repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {human(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(human(v) for v in value) + "]"
    return str(value)


def _pct(value: Any) -> str:
    return "—" if value is None else f"{human(value)} %"


def _short(digest: Any) -> str:
    return f"`{str(digest)[:12]}`" if digest else "(unknown digest)"


def _md(text: Any) -> str:
    """Text inside a table cell or inline code: no pipes or backticks to break out of it."""
    return str(text).replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _diff_lines(summary: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for m in summary.get("models_added") or []:
        lines.append(f"- **Model added:** `{m.get('id') or '?'}` {_short(m.get('digest'))} as `{m.get('name')}`")
    for m in summary.get("models_removed") or []:
        lines.append(f"- **Model removed:** `{m.get('id') or '?'}` {_short(m.get('digest'))} (`{m.get('name')}`)")
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


BAR = 20  # characters of a traffic bar: one per 5 %


def _bar(weight: Any) -> str:
    if not isinstance(weight, (int, float)) or isinstance(weight, bool):
        return "·" * BAR + "    —"
    full = round(float(weight) * BAR / 100)
    return "█" * full + "░" * (BAR - full) + f" {human(weight):>3} %"


def traffic_picture(rows: Sequence[Mapping[str, Any]], before_from: str) -> list[str]:
    """One monospace picture of the traffic: a bar per variant before → after (``rows``: name, model, digest,
    before, after)."""
    width = max([len("variant")] + [len(str(r.get("name"))) for r in rows])
    lines = [
        "```text",
        f"{'variant':<{width}}  {'before (' + before_from + ')':<{BAR + 6}}    after",
    ]
    for r in rows:
        mark = "" if r.get("before") == r.get("after") else "   ◀ changes"
        lines.append(f"{str(r.get('name')):<{width}}  {_bar(r.get('before'))}  →  {_bar(r.get('after'))}{mark}")
    lines.append("```")
    return lines


def _variants_table(summary: Mapping[str, Any]) -> list[str]:
    lines = [
        "<details><summary>Variants, SageMaker models and digests</summary>",
        "",
        "| variant | model | SageMaker model | digest | live before | after |",
        "|---|---|---|---|---|---|",
    ]
    for v in summary.get("variants") or []:
        before, after = v.get("weight_before"), v.get("weight_after")
        after_text = _pct(after) if before == after else f"**{_pct(after)}**"
        lines.append(
            f"| `{v.get('name')}` | `{v.get('model')}` | `{v.get('model_name')}` | {_short(v.get('digest'))} "
            f"| {_pct(before)} | {after_text} |"
        )
    return lines + ["", "</details>"]


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
        lines.append(
            f"| `{f.get('check_id')}` | {_md(f.get('resource') or '')} | {_md(f.get('where') or '')} | {_md(text)} |"
        )
    return lines


def _usd(value: Any, signed: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "unknown"
    return f"{'+' if signed and value > 0 else ('−' if signed and value < 0 else '')}${abs(value):,.2f}"


_DAYS = {1: "1 day", 5: "Monday to Friday", 7: "every day"}


def _cost_lines(cost: Mapping[str, Any] | None) -> list[str]:
    """``cost``: :func:`smgitops.pricing.compare_cost`."""
    if cost is None:
        return ["**Cost:** not estimated."]
    new, base, delta, today = cost["new"], cost.get("base"), cost.get("delta") or {}, cost["today"]
    day = new["day"]
    days = _DAYS.get(day["days_per_week"], f"{day['days_per_week']} days a week")
    when = f"{day['up']}–{day['down']} {day['timezone']}, {days}"
    if day["assumed"]:
        when += "; no `schedule.up` in the release, so a working day from " + day["up"] + " is assumed"
    what = (
        f"{new['variants']} variant{'s' if new['variants'] != 1 else ''} × "
        f"{new['instances'] // max(new['variants'], 1)} × `{new['instance_type']}` = {new['instances']} "
        f"instance{'s' if new['instances'] != 1 else ''}, {human(day['hours'])} h a day ({when})"
    )
    if new["usd_per_day"] is None:
        line = f"**Cost:** unknown — {what}; {today.get('note') or 'no price for the instance type'}"
    else:
        line = (
            f"**Cost:** **{_usd(new['usd_per_day'])} a day, {_usd(new['usd_per_month'])} a month** at the new "
            f"weights — {what} × {_usd(new['usd_per_instance_hour'])}/h"
        )
    lines = [line + "."]
    if base is not None:
        lines.append(
            f"Against the base ({_usd(base['usd_per_day'])} a day, {base['instances']} "
            f"instance{'s' if base['instances'] != 1 else ''}): **{_usd(delta.get('usd_per_day'), True)} a day, "
            f"{_usd(delta.get('usd_per_month'), True)} a month**."
        )
    if today.get("past_teardown"):
        lines.append(f"Today: today's teardown ({today['teardown_at']} {today['timezone']}) has passed: $0.00 more.")
    else:
        lines.append(
            f"Today: {human(today['hours'])} h until the {today['teardown_at']} {today['timezone']} teardown "
            f"({_usd(today.get('usd'))})."
        )
    caveat = "" if today.get("price_confirmed") else ", price unconfirmed"
    notes = [f"on-demand prices of {today.get('price_as_of')}{caveat}"]
    if new["serving"] != new["variants"]:
        notes.append("variants at weight 0 still run (and bill) their instances")
    return [" ".join(lines) + f" <sub>({'; '.join(notes)})</sub>"]


# ---------------------------------------------------------------------------------------------------------------
# The review: metrics beside the models traffic moves from, parameter changes, canary thresholds, promotion
# ---------------------------------------------------------------------------------------------------------------

METRICS = ("accuracy", "f1", "roc_auc")


def archive_manifest(data: bytes) -> dict[str, Any] | None:
    """The ``manifest.json`` of a model archive (None when it has none or is not an archive)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            member = tar.extractfile("manifest.json")
            doc = json.loads(member.read()) if member is not None else None
    except (tarfile.TarError, KeyError, OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


ManifestSource = Callable[[str, str], "dict[str, Any] | None"]


def local_manifests(artifact_dir: Path) -> ManifestSource:
    """Manifests of the archives ``smgitops train`` wrote (``DIR/<model>/model.tar.gz``), by model id and digest:
    only an archive whose bytes have that digest counts."""

    def read(model_id: str, digest: str) -> dict[str, Any] | None:
        path = artifact_dir / model_id / "model.tar.gz"
        if not path.is_file():
            return None
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            return None
        return archive_manifest(data)

    return read


def store_manifests(release: Any, ctx: Context) -> ManifestSource:
    """Manifests of published archives, read from the artifact store (read-only credentials suffice); the store
    is reached only for an archive not found elsewhere. An archive it cannot read counts as absent."""
    from .artifacts import ArtifactStore, store_for
    from .errors import SmgitopsError
    from .naming import artifact_key

    stores: list[ArtifactStore] = []

    def read(model_id: str, digest: str) -> dict[str, Any] | None:
        if not stores:
            stores.append(store_for(release, ctx))
        try:
            body = stores[0].read(artifact_key(model_id, digest))
        except SmgitopsError:
            return None
        if body is None or hashlib.sha256(body).hexdigest() != digest:
            return None
        return archive_manifest(body)

    return read


def _weights(release: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in release.variants:
        digest = release.models[v.model].artifact_sha256
        out[digest] = out.get(digest, 0) + int(v.weight)
    return out


def _spec_changes(old: Any, new: Any) -> list[str]:
    """What differs between two model specs (estimator, params, seed, data), in the release file's words."""
    out: list[str] = []
    if old.estimator != new.estimator:
        out.append(f"estimator: `{old.estimator}` → `{new.estimator}`")
    for key in sorted(set(old.params) | set(new.params)):
        a, b = old.params.get(key, _ABSENT), new.params.get(key, _ABSENT)
        if a is _ABSENT:
            out.append(f"params.{key}: added `{human(b)}`")
        elif b is _ABSENT:
            out.append(f"params.{key}: `{human(a)}` removed (the estimator's default)")
        elif a != b or type(a) is not type(b):
            out.append(f"params.{key}: `{human(a)}` → `{human(b)}`")
    if old.seed != new.seed:
        out.append(f"seed: `{old.seed}` → `{new.seed}`")
    if old.data != new.data:
        out.append(f"data: `{old.data.path}` {_short(old.data.sha256)} → `{new.data.path}` {_short(new.data.sha256)}")
    return out


_ABSENT = object()


def build_review(
    summary: Mapping[str, Any],
    release: Any,
    base: Any | None,
    *,
    manifests: Sequence[ManifestSource] = (),
    evidence: Sequence[Mapping[str, Any]] | None = None,
    own_evidence: Sequence[Mapping[str, Any]] | None = None,
    base_label: str = "the base release",
) -> dict[str, Any]:
    """What the comment's review sections show, as plain data (JSON-able).

    Weights before come from ``base`` (the release on the target branch) when there is one, else from the live
    endpoint as the plan saw it. A digest whose weight grows *gains* traffic; the digests whose weight shrinks are
    the ones it takes traffic from (``donors``, the largest first; metrics differences are against the first)."""
    from .policy import promotion
    from .record import last_canary

    specs: dict[str, tuple[str, Any]] = {}
    for rel in (base, release):  # the release's own spec wins for a digest both have
        if rel is not None:
            for mid, spec in rel.models.items():
                specs[spec.artifact_sha256] = (mid, spec)

    def metrics(digest: str) -> dict[str, Any] | None:
        mid = specs[digest][0] if digest in specs else ""
        for source in manifests:
            manifest = source(mid, digest)
            if manifest and isinstance(manifest.get("metrics"), dict):
                split = manifest.get("split") or {}
                return {**manifest["metrics"], "test_rows": split.get("test_rows")}
        return None

    after_by_variant = {v.name: int(v.weight) for v in release.variants}
    if base is not None:
        before = _weights(base)
        before_by_variant: dict[str, Any] = {v.name: int(v.weight) for v in base.variants}
        before_from = base_label
    else:
        before, before_by_variant = {}, {}
        for v in summary.get("variants") or []:
            w = v.get("weight_before")
            before_by_variant[str(v.get("name"))] = w
            if isinstance(w, (int, float)) and v.get("digest"):
                before[str(v["digest"])] = before.get(str(v["digest"]), 0) + int(w)
        before_from = "live endpoint"
    after = _weights(release)

    names = list(after_by_variant) + [n for n in before_by_variant if n not in after_by_variant]
    digest_of = {v.name: release.models[v.model].artifact_sha256 for v in release.variants}
    model_of = {v.name: v.model for v in release.variants}
    if base is not None:
        for v in base.variants:
            digest_of.setdefault(v.name, base.models[v.model].artifact_sha256)
            model_of.setdefault(v.name, v.model)
    traffic = [
        {
            "name": n,
            "model": model_of.get(n),
            "digest": digest_of.get(n),
            "before": before_by_variant.get(n),
            "after": after_by_variant.get(n),
        }
        for n in names
    ]

    def entry(digest: str) -> dict[str, Any]:
        mid = specs[digest][0] if digest in specs else None
        return {
            "model": mid,
            "digest": digest,
            "before": before.get(digest, 0),
            "after": after.get(digest, 0),
            "metrics": metrics(digest),
        }

    losers = sorted((d for d in before if before[d] > after.get(d, 0)), key=lambda d: after.get(d, 0) - before[d])
    gains = []
    for digest in sorted((d for d in after if after[d] > before.get(d, 0)), key=lambda d: -after[d]):
        item = entry(digest)
        item["donors"] = [entry(d) for d in losers]
        compare: tuple[str, Any] | None = None
        if losers and losers[0] in specs:
            compare = specs[losers[0]]
        elif base is not None and item["model"] in base.models:
            compare = (item["model"], base.models[item["model"]])
        new_spec = specs[digest][1] if digest in specs else None
        item["compared_with"] = compare[0] if compare else None
        item["changes"] = _spec_changes(compare[1], new_spec) if compare and new_spec is not None else []
        item["last_canary"] = last_canary(own_evidence or [], digest)  # a promotion within the environment
        item["estimator"] = new_spec.estimator if new_spec is not None else None
        item["params"] = dict(new_spec.params) if new_spec is not None else {}
        gains.append(item)

    c = release.canary
    return {
        "before_from": before_from,
        "traffic": traffic,
        "gains": gains,
        "thresholds": {
            "bake_minutes": c.bake_minutes,
            "min_invocations": c.min_invocations,
            "max_error_rate": c.max_error_rate,
            "max_p99_latency_ms": c.max_p99_latency_ms,
            "max_initial_weight": c.max_initial_weight,
        },
        "environment": release.environment,
        "promotion": promotion(release, base, evidence),
    }


def _metric(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def _delta(new: Any, old: Any) -> str:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (new, old)):
        return "—"
    diff = float(new) - float(old)
    return "±0" if abs(diff) < 5e-5 else f"{diff:+.4f}"


def _gain_lines(gain: Mapping[str, Any]) -> list[str]:
    head = f"**`{gain.get('model') or '?'}` {_short(gain['digest'])}: {_pct(gain['before'])} → {_pct(gain['after'])}**"
    donors = list(gain.get("donors") or [])
    if donors:
        head += ", taking traffic from " + ", ".join(
            f"`{d.get('model') or '?'}` {_short(d['digest'])} ({_pct(d['before'])} → {_pct(d['after'])})"
            for d in donors
        )
    lines = [head, ""]
    if gain.get("last_canary"):
        environment = gain.get("environment") or "this environment"
        text = _evidence_text({"canary": gain["last_canary"], "source": environment})
        lines += [f"Last canary in {environment}: {text}.", ""]
    shown = [gain, *donors]
    if not any(m.get("metrics") for m in shown):
        lines += [
            "<sub>no held-out metrics: no archive with "
            + ("these digests" if len(shown) > 1 else "this digest")
            + " in the training output or the artifact store</sub>"
        ]
        return lines + _change_lines(gain)
    header = "| held-out metric | " + " | ".join(f"`{m.get('model') or '?'}` {_short(m['digest'])}" for m in shown)
    if donors:
        header += f" | Δ against `{donors[0].get('model') or '?'}`"
    lines += [header + " |", "|---" * (len(shown) + 1 + (1 if donors else 0)) + "|"]
    for key in METRICS:
        new = (gain.get("metrics") or {}).get(key)
        row = f"| {key} | " + " | ".join(_metric((m.get("metrics") or {}).get(key)) for m in shown)
        if donors:
            delta = _delta(new, (donors[0].get("metrics") or {}).get(key))
            row += f" | {delta if delta == '—' else '**' + delta + '**'}"
        lines.append(row + " |")
    missing = [m for m in shown if not m.get("metrics")]
    rows = sorted({str((m.get("metrics") or {}).get("test_rows")) for m in shown if m.get("metrics")})
    notes = []
    if rows:
        notes.append(f"held-out rows: {', '.join(rows)} (the split each model's seed makes)")
    if missing:
        notes.append(
            "no metrics for "
            + ", ".join(f"`{m.get('model') or '?'}` {_short(m['digest'])}" for m in missing)
            + ": no archive with that digest in the training output or the artifact store"
        )
    if notes:
        lines += ["", "<sub>" + "; ".join(notes) + "</sub>"]
    return lines + _change_lines(gain)


def _change_lines(gain: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    changes = list(gain.get("changes") or [])
    if gain.get("compared_with") and changes:
        lines += ["", f"Changes against `{gain['compared_with']}`:", *[f"- {c}" for c in changes]]
    elif gain.get("compared_with"):
        lines += ["", f"Same estimator, parameters, seed and data as `{gain['compared_with']}`."]
    else:
        params = ", ".join(f"{k}: {human(v)}" for k, v in (gain.get("params") or {}).items()) or "the defaults"
        lines += ["", f"New model: `{gain.get('estimator')}` with {params}."]
    return lines


def _thresholds_line(t: Mapping[str, Any]) -> str:
    return (
        f"**Canary after the merge:** the deploy watches each variant with traffic for {t['bake_minutes']} min after "
        f"the apply and rolls back to the last good release unless it gets at least {t['min_invocations']} "
        f"invocations with a 5XX error rate of at most {float(t['max_error_rate']) * 100:g} % and "
        f"a p99 model latency of at most {float(t['max_p99_latency_ms']):g} ms. A model never served before starts "
        f"at no more than {t['max_initial_weight']} %."
    )


def _evidence_text(entry: Mapping[str, Any]) -> str:
    canary = entry.get("canary")
    source = entry.get("source")
    if canary:
        v = canary.get("variant") or {}
        window = canary.get("window") or {}
        start, end = str(window.get("start") or ""), str(window.get("end") or "")
        rate = v.get("error_rate")
        rate_text = f"{float(rate) * 100:.2f} %" if isinstance(rate, (int, float)) else "—"
        p99 = v.get("p99_latency_ms")
        text = (
            f"✅ passed the {source} canary of `{str(canary.get('revision'))[:8]}` ({start[:16].replace('T', ' ')}–"
            f"{end[11:16]} UTC): variant `{v.get('name')}` at {_pct(v.get('weight'))}, {v.get('invocations')} "
            f"invocations, {v.get('errors')} errors ({rate_text}), p99 "
            f"{human(round(float(p99))) + ' ms' if isinstance(p99, (int, float)) else '—'}"
        )
        if entry.get("override"):
            text += f"; override not needed: {_md(entry['override'])}"
        return text
    if entry.get("status") == "served":
        where = entry.get("environment") or "this environment"
        return f"served in {where} before this change; no {source} canary on record"
    if entry.get("status") == "override":
        return f"⚠️ no {source} canary on record; **override**: “{_md(entry.get('override'))}”"
    return f"❌ no passed {source} canary on record: release policy RP005 fails"


def _promotion_lines(entries: Sequence[Mapping[str, Any]], environment: str) -> list[str]:
    if not entries:
        return []
    source = entries[0].get("source")
    lines = [
        f"#### Promotion evidence (from {source})",
        "",
        f"| model | digest | traffic in {environment} | last canary in {source} |",
        "|---|---|---|---|",
    ]
    for e in entries:
        models = ", ".join(f"`{m}`" for m in e.get("models") or [])
        lines.append(
            f"| {models} | {_short(e['digest'])} | {_pct(e.get('weight'))} | "
            f"{_evidence_text(dict(e, environment=environment))} |"
        )
    return lines + [""]


def _links(env: Mapping[str, str]) -> str:
    server = (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    repo, run, sha = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID"), env.get("GITHUB_SHA")
    if not repo:
        return ""
    parts = []
    if run:
        parts.append(f"[workflow run {run}]({server}/{repo}/actions/runs/{run})")
    if sha:
        parts.append(f"commit [`{sha[:8]}`]({server}/{repo}/commit/{sha})")
    return " · ".join(parts)


def render_markdown(
    summary: dict[str, Any],
    *,
    policy: dict[str, Any] | None = None,
    cost: dict[str, Any] | None = None,
    review: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The pull-request comment for one environment (Markdown, starting with its hidden marker).

    ``cost``: :func:`smgitops.pricing.compare_cost`; ``review``: :func:`build_review`; ``env``: where the run and
    commit links come from (``GITHUB_SERVER_URL``, ``GITHUB_REPOSITORY``, ``GITHUB_RUN_ID``, ``GITHUB_SHA``)."""
    environment = str(summary.get("environment", ""))
    lines = [
        marker(environment),
        f"### smgitops · `{environment}` · `{summary.get('release')}` → endpoint `{summary.get('endpoint')}`",
        "",
        *_diff_lines(summary),
        "",
        "#### Traffic",
        "",
    ]
    if review is not None:
        lines += traffic_picture(review["traffic"], str(review["before_from"]))
    else:
        rows = [
            {"name": v.get("name"), "before": v.get("weight_before"), "after": v.get("weight_after")}
            for v in summary.get("variants") or []
        ]
        lines += traffic_picture(rows, "live endpoint")
    lines += [""] + _variants_table(summary) + [""]
    lines += [
        f"Instances: {summary.get('instance_count')} × `{summary.get('instance_type')}` per variant.",
        "",
    ]
    if review is not None:
        if review["gains"]:
            lines += ["#### Models that gain traffic", ""]
            for gain in review["gains"]:
                lines += _gain_lines(dict(gain, environment=review.get("environment"))) + [""]
        lines += _promotion_lines(review.get("promotion") or [], environment)
        lines += [_thresholds_line(review["thresholds"]), ""]
    lines += ["#### Plan, policy and cost", ""]
    lines += _plan_lines(summary) + [""]
    lines += _policy_lines(policy) + [""]
    lines += _cost_lines(cost) + [""]
    links = _links(env if env is not None else {})
    lines.append(
        f"<sub>{links + ' · ' if links else ''}generated {summary.get('generated_at')} · "
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
