"""Helpers shared by the smgitops custom checks (not a check itself: it defines no ``check`` object).

checkov hands a check the resource's configuration in one of two shapes, and every helper here accepts both:

* from HCL (``--framework terraform``): every attribute value is wrapped in a list, nested blocks are lists of
  dicts, and expressions checkov cannot evaluate stay as strings (``local.release.endpoint.instance_type``,
  ``production_variants.value.weight``, ``yamldecode(file(...))``);
* from a plan (``--framework terraform_plan``): the same wrapping, with concrete values, plus ``tags_all``.

A value that is still an expression is *unresolved*: only the plan knows it. Checks answer UNKNOWN for it (checkov
then leaves the resource out of the report) and decide on the plan, where the same attribute is concrete.
"""

from __future__ import annotations

import ast
import json
import os
import re
from typing import Any

# Prefixes of Terraform references that checkov leaves unevaluated.
_REFERENCE = re.compile(r"^(var|local|each|data|module|count|path|self|terraform)\.")
_ITERATOR = re.compile(r"^[A-Za-z_][\w-]*\.(value|key)\b")  # a dynamic block's iterator
_CALL = re.compile(r"^[a-z_][a-z0-9_]*\(")  # a function call: yamldecode(...), merge(...)
_RESOURCE_ATTR = re.compile(r"^aws_[a-z0-9_]+\.[A-Za-z_][\w-]*(\[[^\]]*\])?\.[a-z_]+")


def unwrap(value: Any) -> Any:
    """checkov wraps attribute values in one-element lists; return the value itself."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def is_unresolved(value: Any) -> bool:
    """True when ``value`` is a Terraform expression checkov could not evaluate."""
    if not isinstance(value, str):
        return False
    v = value.strip()
    return bool("${" in v or _REFERENCE.match(v) or _ITERATOR.match(v) or _CALL.match(v) or _RESOURCE_ATTR.match(v))


def attr(conf: dict[str, Any], key: str) -> Any:
    """The unwrapped value of ``key`` (None when absent)."""
    if key not in conf:
        return None
    return unwrap(conf[key])


def blocks(conf: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Nested blocks called ``name``: static ones and the content of ``dynamic "<name>"`` blocks.

    checkov usually expands a dynamic block into ``conf[name]`` already; when it could not, the content template is
    under ``conf["dynamic"]``. Either way each returned dict has unresolved values where the iterator is used.
    """
    found: list[dict[str, Any]] = []
    raw = conf.get(name)
    if isinstance(raw, list):
        found.extend(b for b in raw if isinstance(b, dict))
    elif isinstance(raw, dict):
        found.append(raw)
    if not found:
        for dyn in conf.get("dynamic") or []:
            if isinstance(dyn, dict) and name in dyn:
                body = dyn[name]
                items = body if isinstance(body, list) else [body]
                for item in items:
                    if isinstance(item, dict):
                        content = item.get("content", item)
                        content = unwrap(content)
                        if isinstance(content, dict):
                            found.append(content)
    return found


def truthy(value: Any) -> bool | None:
    """True/False for a boolean given as bool or string; None when unknown or unresolved."""
    value = unwrap(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    return None


def tags_of(conf: dict[str, Any]) -> dict[str, Any] | None:
    """The resource's effective tags: ``tags_all`` from a plan (provider default tags included), else ``tags``.

    Returns None when the tags are an unresolved expression as a whole.
    """
    for key in ("tags_all", "tags"):
        if key not in conf:
            continue
        value = unwrap(conf[key])
        if isinstance(value, dict):
            return {k: unwrap(v) for k, v in value.items() if not k.startswith("__") and k not in _LOCATION_KEYS}
        if value is None:
            continue
        if is_unresolved(value):
            return None
    return {}


_LOCATION_KEYS = {"start_line", "end_line"}


def policy_document(value: Any) -> dict[str, Any] | None:
    """An IAM policy given inline as ``jsonencode({...})`` (a dict for checkov) or as a JSON string."""
    value = unwrap(value)
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            doc = json.loads(value)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None
    return None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _vertices(graph: Any) -> list[dict[str, Any]]:
    if graph is None:
        return []
    try:
        nodes = graph.nodes()
    except Exception:  # noqa: BLE001 - checkov's graph type is an implementation detail
        return []
    out = []
    for node in nodes:
        data = node[1] if isinstance(node, tuple) and len(node) == 2 else node
        if isinstance(data, dict):
            out.append(data)
    return out


def module_dir(check: Any) -> str | None:
    """Absolute directory of the module that holds the resource ``check`` is looking at.

    ``check.entity_path`` is ``<file relative to the scan root>:<type>:<name>``; the graph's vertices carry absolute
    file paths. Lookups are confined to that directory, so a scan over several roots never mixes them up.
    """
    scanned = str(getattr(check, "entity_path", "")).split(":", 1)[0]
    if not scanned:
        return None
    for v in _vertices(getattr(check, "graph", None)):
        path = str(v.get("file_path_", ""))
        if path and path.endswith(scanned):
            return os.path.dirname(path)
    return None


def _find_vertex(check: Any, block_type: str, block_name: str, directory: str | None) -> dict[str, Any] | None:
    for v in _vertices(getattr(check, "graph", None)):
        if v.get("block_type_") != block_type or v.get("block_name_") != block_name:
            continue
        if directory is not None and os.path.dirname(str(v.get("file_path_", ""))) != directory:
            continue
        return v
    return None


def provider_default_tags(check: Any, conf: dict[str, Any]) -> dict[str, Any]:
    """``default_tags`` of the provider configuration the resource uses (HCL scans only)."""
    address = str(conf.get("__provider_address__", "aws.default"))
    name, _, alias = address.partition(".")
    directory = module_dir(check)
    for v in _vertices(getattr(check, "graph", None)):
        if v.get("block_type_") != "provider" or v.get("block_name_") != (name if alias == "default" else address):
            continue
        if directory is not None and os.path.dirname(str(v.get("file_path_", ""))) != directory:
            continue
        for block in blocks(v.get("config_", {}).get(name, {}), "default_tags"):
            tags = unwrap(block.get("tags"))
            if isinstance(tags, dict):
                return {k: unwrap(val) for k, val in tags.items() if not k.startswith("__")}
    return {}


def effective_tags(check: Any, conf: dict[str, Any]) -> dict[str, Any] | None:
    """Tags the resource will carry: a plan's ``tags_all``, or the provider's default tags merged with ``tags``."""
    if "__change_actions__" in conf:  # a plan: tags_all already holds the provider's default tags
        return tags_of(conf)
    own = tags_of(conf)
    if own is None:
        return None
    return {**provider_default_tags(check, conf), **own}


_DOC_REF = re.compile(r"data\.aws_iam_policy_document\.([\w-]+)(\[[^\]]*\])?\.json")


def data_policy_document(check: Any, reference: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Resolve ``data.aws_iam_policy_document.<name>[<key>].json`` through checkov's graph.

    checkov keeps such references as strings in a resource's configuration; the data block itself is a vertex
    of the graph it hands to every check. The statement blocks are converted to the JSON shape IAM uses, so one
    evaluator serves inline and data-source policies. Returns (policy, data vertex), or None when unresolvable.
    """
    ref = unwrap(reference)
    if not isinstance(ref, str):
        return None
    match = _DOC_REF.search(ref)
    if not match:
        return None
    name = match.group(1)
    vertex = _find_vertex(check, "data", f"aws_iam_policy_document.{name}", module_dir(check))
    if vertex is None:
        return None
    config = vertex.get("config_", {}).get("aws_iam_policy_document", {}).get(name, {})
    return _statements_to_json(config), vertex


def _statements_to_json(config: dict[str, Any]) -> dict[str, Any]:
    statements: list[dict[str, Any]] = []
    for st in blocks(config, "statement"):
        out: dict[str, Any] = {"Effect": attr(st, "effect") or "Allow"}
        actions = unwrap(st.get("actions"))
        if actions is not None:
            out["Action"] = as_list(actions)
        resources = unwrap(st.get("resources"))
        if resources is not None:
            out["Resource"] = as_list(resources)
        principals: dict[str, list[Any]] = {}
        for p in blocks(st, "principals"):
            ptype = attr(p, "type")
            ids = as_list(unwrap(p.get("identifiers")))
            principals.setdefault(str(ptype), []).extend(ids)
        if principals:
            out["Principal"] = "*" if set(principals) == {"*"} else principals
        conditions: dict[str, dict[str, list[Any]]] = {}
        for c in blocks(st, "condition"):
            test = str(attr(c, "test"))
            variable = str(attr(c, "variable"))
            conditions.setdefault(test, {}).setdefault(variable, []).extend(as_list(unwrap(c.get("values"))))
        if conditions:
            out["Condition"] = conditions
        statements.append(out)
    return {"Statement": statements}


def _literal_jsonencode(text: str) -> dict[str, Any] | None:
    """``jsonencode({...})`` as python-hcl2 renders it: the argument is a Python literal."""
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1].strip()
    if not (text.startswith("jsonencode(") and text.endswith(")")):
        return None
    try:
        value = ast.literal_eval(text[len("jsonencode(") : -1])
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, dict) else None


def inline_jsonencode(check: Any, address: str, attribute: str) -> dict[str, Any] | None:
    """Re-read a ``jsonencode({...})`` attribute from the resource's own file.

    When the object interpolates references (``"${aws_s3_bucket.x.arn}/*"``) checkov's rendering of it is no longer
    a parseable literal; python-hcl2's raw parse of the file is, so the check reads the block from there.
    """
    rtype, _, rname = address.partition(".")
    vertex = _find_vertex(check, "resource", address, module_dir(check))
    if vertex is None or not vertex.get("file_path_"):
        return None
    try:
        import hcl2  # checkov's own dependency

        with open(vertex["file_path_"], encoding="utf-8") as fh:
            parsed = hcl2.load(fh)
    except Exception:  # noqa: BLE001 - unreadable file: the caller fails the check
        return None
    for block in parsed.get("resource", []):
        body = block.get(rtype, {}).get(rname)
        if isinstance(body, dict) and attribute in body:
            raw = unwrap(body[attribute])
            return _literal_jsonencode(raw) if isinstance(raw, str) else None
    return None


def resolve_policy(check: Any, conf: dict[str, Any], attribute: str) -> dict[str, Any] | None:
    """The policy in ``conf[attribute]``: inline JSON/``jsonencode``, or a policy-document data source."""
    value = conf.get(attribute)
    doc = policy_document(value)
    if doc is not None:
        return doc
    resolved = data_policy_document(check, value)
    if resolved is not None:
        return resolved[0]
    raw = unwrap(value)
    if isinstance(raw, str) and raw.lstrip("${ ").startswith("jsonencode("):
        return _literal_jsonencode(raw) or inline_jsonencode(check, str(conf.get("__address__", "")), attribute)
    return None


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]
