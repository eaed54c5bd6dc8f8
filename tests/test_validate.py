"""`smgitops validate` and the strict release loader.

Every malformed release below is a small textual edit of the shipped ``releases/dev.yaml``, written to a scratch
repository (``releases/dev.yaml`` + a copy of the data file), so each case proves one rule against the real file.
Each asserts exit code 2 and a ``file:line:col: field: reason`` line naming the file, the line of the edit and the
field path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smgitops import naming
from smgitops.cli import main
from smgitops.errors import InvalidRelease
from smgitops.release import load_release, load_release_text
from smgitops.release_checks import DEFAULT_ALLOWED_INSTANCE_TYPES, MAX_FILE_BYTES, validate_file, validate_text

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "releases" / "dev.yaml"
DATA = ROOT / "data" / "breast_cancer.csv"
MODELINE = "# yaml-language-server: $schema=./release.schema.json"


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------


def make_repo(base: Path) -> Path:
    """A scratch repository holding a copy of the shipped dev release and its data; returns the release path."""
    (base / "releases").mkdir(parents=True)
    (base / "data").mkdir()
    shutil.copyfile(DATA, base / "data" / DATA.name)
    release = base / "releases" / "dev.yaml"
    shutil.copyfile(SHIPPED, release)
    return release


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, f"fixture drift: {old!r} not in the shipped release"
    return text.replace(old, new, 1)


def line_of(text: str, anchor: str) -> int:
    for number, line in enumerate(text.split("\n"), start=1):  # "\n" only, as editors and YAML 1.2 count lines
        if anchor in line:
            return number
    raise AssertionError(f"anchor {anchor!r} not found")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def problem_lines(err: str, file: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"{file}:")]


def assert_reported(err: str, file: str, line: int, field: str, reason: str) -> None:
    """One problem line names the file, the line, the field path and (a fragment of) the reason."""
    candidates = [
        entry
        for entry in problem_lines(err, file)
        if entry.startswith(f"{file}:{line}:") and f": {field}: " in entry and reason.lower() in entry.lower()
    ]
    assert candidates, f"expected {file}:{line}: {field}: ...{reason}... in:\n{err}"
    assert "Traceback" not in err


@pytest.fixture()
def release(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


# ---------------------------------------------------------------------------------------------------------------
# the shipped releases and the schema
# ---------------------------------------------------------------------------------------------------------------


def test_shipped_releases_pass(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(capsys, "releases/dev.yaml", "releases/prod.yaml")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["releases/dev.yaml: ok", "releases/prod.yaml: ok"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_shipped_release_loads_typed(env: str) -> None:
    path = ROOT / "releases" / f"{env}.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == MODELINE
    rel = load_release(path)
    assert rel.environment == env
    assert rel.region == "us-east-1"
    assert rel.image == "1.2-1-cpu-py3"
    assert rel.endpoint.name == f"smgitops-{env}"
    assert rel.endpoint.instance_type == "ml.t2.large"
    assert rel.endpoint.data_capture.enabled is True
    assert rel.teardown.timezone == "Europe/Berlin"
    assert rel.teardown.at == ("19:30" if env == "dev" else "20:00")
    assert [(v.name, v.model, v.weight) for v in rel.variants] == [("primary", "cancer-logreg", 100)]
    model = rel.models["cancer-logreg"]
    assert model.estimator == "sklearn.linear_model.LogisticRegression"
    assert isinstance(model.seed, int) and not isinstance(model.seed, bool)
    assert rel.canary.max_initial_weight == 10
    # YAML 1.1 (PyYAML), the strict 1.2 reading and therefore Terraform's yamldecode all see the same document.
    assert yaml.safe_load(text) == rel.raw
    # text from `git show` gives the same release
    assert load_release_text(text, path) == rel


def test_shipped_data_digest_is_the_real_one() -> None:
    import hashlib

    rel = load_release(SHIPPED)
    for model in rel.models.values():
        assert hashlib.sha256((ROOT / model.data.path).read_bytes()).hexdigest() == model.data.sha256


def test_schema_is_2020_12_with_descriptions_and_closed_objects() -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "releases" / "release.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"]

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and where == "$.$defs.model.properties.params":
                # the one open mapping: its names are closed by the estimator's own parameters (semantic check);
                # its properties are the training budget's bounds
                assert node.get("additionalProperties") == {"$ref": "#/$defs/paramValue"}
                assert all("maximum" in prop for prop in node["properties"].values())
            elif "properties" in node:
                assert node.get("additionalProperties") is False, f"{where} is not closed"
                for name, prop in node["properties"].items():
                    assert prop.get("description"), f"{where}.{name} has no description"
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(schema, "$")
    # and the shipped releases are valid for any 2020-12 validator (what editors run)
    for env in ("dev", "prod"):
        doc = yaml.safe_load((ROOT / "releases" / f"{env}.yaml").read_text(encoding="utf-8"))
        assert list(Draft202012Validator(schema).iter_errors(doc)) == []


# ---------------------------------------------------------------------------------------------------------------
# at least 40 distinct malformed releases
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    old: str
    new: str
    field: str
    reason: str
    anchor: str | None = None  # text on the line the problem must point at (default: first line of `new`)
    setup: Callable[[Path], None] | None = None  # extra files in the scratch repository

    def expected_line(self, text: str) -> int:
        anchor = self.anchor or next(line.strip() for line in self.new.splitlines() if line.strip())
        return line_of(text, anchor)


def _symlink_out(repo: Path) -> None:
    outside = repo.parent / "outside.csv"
    shutil.copyfile(DATA, outside)
    (repo / "data" / "link.csv").symlink_to(outside)


_SECOND_VARIANT = "    weight: 100               # percent of the traffic\n"
_MODEL_LINE = "  cancer-logreg:"
_VARIANT_BLOCK = (
    "  - name: primary             # unique, names the per-variant CloudWatch metrics\n"
    "    model: cancer-logreg      # a key under `models`\n" + _SECOND_VARIANT
)
_PARAMS_BLOCK = (
    "    params:                   # keyword arguments the estimator accepts ({} for its defaults)\n"
    "      C: 1.0\n      max_iter: 5000"
)

MALFORMED = {
    # ---- YAML reading
    "duplicate-top-level-key": Case(
        "region: us-east-1", "region: us-east-1\nregion: us-west-2", "region", "duplicate key", "region: us-west-2"
    ),
    "duplicate-nested-key": Case(
        "max_iter: 5000",
        "max_iter: 5000\n      max_iter: 200",
        "models.cancer-logreg.params.max_iter",
        "duplicate key",
        "max_iter: 200",
    ),
    "anchor": Case("C: 1.0", "C: &c 1.0", "models.cancer-logreg.params.C", "anchor '&c' refused"),
    "alias": Case(
        "  max_iter: 5000", "  max_iter: 5000\n      tol: *c", "models.cancer-logreg.params.tol", "alias", "tol: *c"
    ),
    "python-tag": Case(
        "seed: 7", "seed: !!python/object/apply:os.getpid []", "models.cancer-logreg.seed", "!!python/object/apply"
    ),
    "custom-tag": Case("image: 1.2-1-cpu-py3", "image: !secret 1.2-1-cpu-py3", "image", "tag '!secret' refused"),
    "yaml11-yes": Case("enabled: true", "enabled: yes", "endpoint.data_capture.enabled", "boolean true by YAML 1.1"),
    "yaml11-off": Case("enabled: true", "enabled: Off", "endpoint.data_capture.enabled", "boolean false by YAML 1.1"),
    "yaml11-sexagesimal-time": Case('at: "19:30"', "at: 19:30", "teardown.at", "integer 1170"),
    "yaml11-octal": Case("seed: 7", "seed: 010", "models.cancer-logreg.seed", "integer 8 by YAML 1.1"),
    "yaml11-underscore": Case(
        "min_invocations: 50", "min_invocations: 1_000", "canary.min_invocations", "integer 1000 by YAML 1.1"
    ),
    "yaml11-exponent": Case("max_error_rate: 0.01", "max_error_rate: 1e-2", "canary.max_error_rate", "number 0.01"),
    "yaml11-date": Case("timezone: Europe/Berlin", "timezone: 2026-11-25", "teardown.timezone", "date/time"),
    "yaml11-merge-key": Case(
        "  bake_minutes: 10", "  <<: {bake_minutes: 10}", 'canary["<<"]', "YAML 1.1", "<<: {bake_minutes"
    ),
    "non-string-key": Case("C: 1.0", "1: 1.0", "models.cancer-logreg.params.1", "keys must be strings", "1: 1.0"),
    "non-finite-number": Case(
        "max_p99_latency_ms: 300", "max_p99_latency_ms: .inf", "canary.max_p99_latency_ms", "not a finite number"
    ),
    # ---- types (booleans and floats are not integers)
    "float-weight": Case("weight: 100", "weight: 100.0", "variants[0].weight", "expected an integer, got the number"),
    "bool-weight": Case("weight: 100", "weight: true", "variants[0].weight", "expected an integer, got the boolean"),
    "string-weight": Case("weight: 100", 'weight: "100"', "variants[0].weight", "expected an integer, got the string"),
    "null-seed": Case("seed: 7", "seed:", "models.cancer-logreg.seed", "expected an integer, got null"),
    "string-enabled": Case("enabled: true", 'enabled: "true"', "endpoint.data_capture.enabled", "expected a boolean"),
    "numeric-digest": Case(
        '"432ff316e7bfb60b70a275064b4401315cc39f09c9099d031013a23647e98687"',
        "1234",
        "models.cancer-logreg.data.sha256",
        "got the integer 1234 (quote it)",
        "sha256: 1234",
    ),
    # ---- shape
    "unknown-top-level-field": Case(
        "region: us-east-1", "region: us-east-1\nowner: me", "owner", "unknown field", "owner: me"
    ),
    "unknown-nested-field-typo": Case(
        "  bake_minutes: 10", "  bake_minute: 10", "canary.bake_minute", "did you mean 'bake_minutes'"
    ),
    "unknown-variant-field": Case(
        _SECOND_VARIANT, _SECOND_VARIANT + "    colour: blue\n", "variants[0].colour", "unknown field", "colour: blue"
    ),
    "missing-canary-field": Case(
        "  min_invocations: 50", "  # (removed)", "canary.min_invocations", "required field missing", "canary:"
    ),
    "missing-data-sha256": Case(
        '      sha256: "432ff', '      # sha256: "432ff', "models.cancer-logreg.data.sha256", "required", "    data:"
    ),
    "empty-variants": Case(_VARIANT_BLOCK, "  []\n", "variants", "has 0 entries, at least 1", "variants:"),
    # ---- variants
    "weights-not-100": Case("weight: 100", "weight: 90", "variants", "weights sum to 90", "variants:"),
    "weights-over-100": Case(
        _SECOND_VARIANT,
        _SECOND_VARIANT + "  - name: canary\n    model: cancer-logreg\n    weight: 10\n",
        "variants",
        "weights sum to 110",
        "variants:",
    ),
    "all-weights-zero": Case("weight: 100", "weight: 0", "variants", "no variant receives traffic", "variants:"),
    "negative-weight": Case("weight: 100", "weight: -10", "variants[0].weight", "at least 0"),
    "weight-over-100": Case("weight: 100", "weight: 101", "variants[0].weight", "at most 100"),
    "duplicate-variant-name": Case(
        _SECOND_VARIANT,
        "    weight: 90\n  - name: primary  # again\n    model: cancer-logreg\n    weight: 10\n",
        "variants[1].name",
        "duplicate variant name 'primary'",
        "# again",
    ),
    "undefined-model": Case(
        "model: cancer-logreg", "model: cancer-logreg-v2", "variants[0].model", "not defined under models"
    ),
    "variant-name-not-dns": Case("name: primary", "name: primary_1", "variants[0].name", "only letters, digits"),
    "variant-name-too-long": Case("name: primary", "name: " + "p" * 64, "variants[0].name", "at most 63"),
    # ---- endpoint
    "endpoint-name-too-long": Case("name: smgitops-dev", "name: " + "e" * 55, "endpoint.name", "at most 54"),
    "endpoint-name-trailing-hyphen": Case("name: smgitops-dev", "name: smgitops-dev-", "endpoint.name", "hyphens"),
    "endpoint-name-of-another-environment": Case(
        "name: smgitops-dev", "name: smgitops-prod", "endpoint.name", "must end with -dev"
    ),
    "endpoint-name-environment-not-last": Case(
        "name: smgitops-dev", "name: smgitops-dev-blue", "endpoint.name", "must end with -dev"
    ),
    "endpoint-name-is-only-the-environment": Case(
        "name: smgitops-dev", "name: dev", "endpoint.name", "must end with -dev"
    ),
    "instance-type-not-allowed": Case(
        "instance_type: ml.t2.large", "instance_type: ml.p3.16xlarge", "endpoint.instance_type", "allowlist"
    ),
    "instance-type-t3": Case(
        "instance_type: ml.t2.large",
        "instance_type: ml.t3.large",
        "endpoint.instance_type",
        "'ml.t3.large' is not offered for SageMaker real-time endpoints (ml.t3.* instances serve notebooks and Studio "
        "only); use ml.t2.large",
    ),
    "instance-type-t3-no-t2-size": Case(
        "instance_type: ml.t2.large", "instance_type: ml.t3.micro", "endpoint.instance_type", "; use ml.t2.large"
    ),
    "instance-type-not-ml": Case(
        "instance_type: ml.t2.large", "instance_type: t2.large", "endpoint.instance_type", "SageMaker instance type"
    ),
    "instance-count-zero": Case("instance_count: 1", "instance_count: 0", "endpoint.instance_count", "at least 1"),
    "instance-count-over-cap": Case("instance_count: 1", "instance_count: 5", "endpoint.instance_count", "at most 4"),
    "sampling-over-100": Case(
        "sampling_percentage: 100", "sampling_percentage: 101", "endpoint.data_capture.sampling_percentage", "at most"
    ),
    # ---- top-level scalars
    "region-not-allowed": Case("region: us-east-1", "region: eu-west-1", "region", "region allowlist"),
    "region-malformed": Case("region: us-east-1", "region: US-EAST-1", "region", "AWS region name"),
    "environment-mismatch": Case("environment: dev", "environment: prod", "environment", "does not match the file"),
    "environment-malformed": Case("environment: dev", "environment: Dev!", "environment", "lowercase"),
    # the environment is part of the SageMaker model name: short, and no hyphen so that the name reads back
    "environment-too-long": Case("environment: dev", "environment: d" + "e" * 12, "environment", "1-12 characters"),
    "environment-hyphen": Case("environment: dev", "environment: dev-eu", "environment", "letters and digits"),
    "image-unknown": Case("image: 1.2-1-cpu-py3", "image: 9.9-1-cpu-py3", "image", "unknown image tag"),
    "image-version-mismatch": Case(
        "image: 1.2-1-cpu-py3", "image: 1.0-1-cpu-py3", "image", "serves scikit-learn 1.0.2 but training uses 1.2.1"
    ),
    # ---- teardown
    "teardown-hour-24": Case('at: "19:30"', 'at: "24:00"', "teardown.at", "24-hour time"),
    "teardown-no-leading-zero": Case('at: "19:30"', 'at: "7:30"', "teardown.at", "HH:MM"),
    "timezone-unknown": Case("timezone: Europe/Berlin", "timezone: Mars/Olympus", "teardown.timezone", "IANA"),
    "timezone-typo": Case(
        "timezone: Europe/Berlin", "timezone: Europe/Berlinn", "teardown.timezone", "did you mean 'Europe/Berlin'"
    ),
    "timezone-localtime": Case("timezone: Europe/Berlin", "timezone: localtime", "teardown.timezone", "not an IANA"),
    # ---- models
    "model-id-too-long": Case(
        _MODEL_LINE, "  " + "m" * 37 + ":", "models." + "m" * 37, "at most 36): the SageMaker model name"
    ),
    "model-id-not-dns": Case(_MODEL_LINE, "  cancer_logreg:", "models.cancer_logreg", "only letters, digits"),
    "data-path-absolute": Case(
        "path: data/breast_cancer.csv", "path: /etc/hostname", "models.cancer-logreg.data.path", "is absolute"
    ),
    "data-path-dotdot": Case(
        "path: data/breast_cancer.csv",
        "path: data/../../breast_cancer.csv",
        "models.cancer-logreg.data.path",
        "leaves the repository",
    ),
    "data-path-backslash": Case(
        "path: data/breast_cancer.csv", "path: data\\breast_cancer.csv", "models.cancer-logreg.data.path", "forward"
    ),
    "data-path-symlink-escape": Case(
        "path: data/breast_cancer.csv",
        "path: data/link.csv",
        "models.cancer-logreg.data.path",
        "outside the repository",
        setup=_symlink_out,
    ),
    "data-file-missing": Case(
        "path: data/breast_cancer.csv", "path: data/missing.csv", "models.cancer-logreg.data.path", "not found"
    ),
    "data-path-directory": Case(
        "path: data/breast_cancer.csv", "path: data", "models.cancer-logreg.data.path", "not a regular file"
    ),
    "data-sha256-mismatch": Case(
        'sha256: "432ff', 'sha256: "532ff', "models.cancer-logreg.data.sha256", "expected 532ff316e7bf"
    ),
    "data-sha256-uppercase": Case(
        'sha256: "432ff', 'sha256: "432FF', "models.cancer-logreg.data.sha256", "64 lowercase hexadecimal"
    ),
    "artifact-sha256-short": Case(
        'artifact_sha256: "932eb', 'artifact_sha256: "932e', "models.cancer-logreg.artifact_sha256", "64 lowercase"
    ),
    "estimator-not-allowed": Case(
        "estimator: sklearn.linear_model.LogisticRegression",
        "estimator: sklearn.svm.SVC",
        "models.cancer-logreg.estimator",
        "not on the estimator allowlist",
    ),
    "estimator-typo": Case(
        "LogisticRegression  #",
        "LogisticRegresion  #",
        "models.cancer-logreg.estimator",
        "did you mean 'sklearn.linear_model.LogisticRegression'",
        "estimator:",
    ),
    "estimator-not-dotted": Case(
        "estimator: sklearn.linear_model.LogisticRegression",
        "estimator: LogisticRegression",
        "models.cancer-logreg.estimator",
        "dotted class name",
    ),
    "param-unknown": Case(
        "max_iter: 5000", "max_iters: 1000", "models.cancer-logreg.params.max_iters", "did you mean 'max_iter'"
    ),
    "param-random-state": Case("max_iter: 5000", "random_state: 1", "models.cancer-logreg.params.random_state", "seed"),
    "param-excluded-n-jobs": Case(
        "max_iter: 5000", "n_jobs: 4", "models.cancer-logreg.params.n_jobs", "may not set it"
    ),
    "param-value-out-of-range": Case("C: 1.0", "C: -1.0", "models.cancer-logreg.params.C", "range (0, inf]"),
    "param-value-bad-choice": Case(
        "max_iter: 5000",
        "max_iter: 5000\n      penalty: l3",
        "models.cancer-logreg.params.penalty",
        "'penalty'",
        "penalty: l3",
    ),
    "params-not-mapping": Case(
        _PARAMS_BLOCK, "    params: [C, max_iter]\n", "models.cancer-logreg.params", "expected a mapping"
    ),
    # each value valid alone, refused together by scikit-learn's fit (the synthetic probe of validate)
    "params-l1-with-lbfgs": Case(
        "max_iter: 5000",
        "max_iter: 5000\n      penalty: l1",
        "models.cancer-logreg.params",
        "Solver lbfgs supports only 'l2' or 'none' penalties, got l1 penalty",
        "    params:",
    ),
    "params-dual-with-lbfgs": Case(
        "max_iter: 5000",
        "max_iter: 5000\n      dual: true",
        "models.cancer-logreg.params",
        "refuses these parameters together when fitting",
        "    params:",
    ),
    # the training budget (maximums stated in the schema)
    "param-max-iter-over-budget": Case(
        "max_iter: 5000", "max_iter: 20000", "models.cancer-logreg.params.max_iter", "at most 10000"
    ),
    "seed-negative": Case("seed: 7", "seed: -1", "models.cancer-logreg.seed", "at least 0"),
    "seed-too-large": Case("seed: 7", "seed: 4294967296", "models.cancer-logreg.seed", "at most 4294967295"),
    # ---- canary
    "error-rate-over-1": Case("max_error_rate: 0.01", "max_error_rate: 1.5", "canary.max_error_rate", "at most 1"),
    "error-rate-percent-string": Case(
        "max_error_rate: 0.01", 'max_error_rate: "1%"', "canary.max_error_rate", "expected a number"
    ),
    "latency-zero": Case(
        "max_p99_latency_ms: 300", "max_p99_latency_ms: 0", "canary.max_p99_latency_ms", "greater than 0"
    ),
    "bake-minutes-zero": Case("bake_minutes: 10", "bake_minutes: 0", "canary.bake_minutes", "at least 1"),
    "max-initial-weight-zero": Case(
        "  max_p99_latency_ms: 300",
        "  max_p99_latency_ms: 300\n  max_initial_weight: 0",
        "canary.max_initial_weight",
        "at least 1",
        "max_initial_weight: 0",
    ),
}


def test_enough_distinct_malformed_releases() -> None:
    assert len(MALFORMED) >= 40
    assert len({(c.old, c.new) for c in MALFORMED.values()}) == len(MALFORMED)


@pytest.mark.parametrize("case", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_release_is_refused(case: Case, release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = edit(release.read_text(encoding="utf-8"), case.old, case.new)
    release.write_text(text, encoding="utf-8")
    if case.setup is not None:
        case.setup(release.parent.parent)
    code, out, err = run_cli(capsys, str(release))
    assert code == 2
    assert ": ok" not in out
    assert_reported(err, str(release), case.expected_line(text), case.field, case.reason)
    assert err.rstrip().splitlines()[-1].startswith("smgitops validate: ")


_LOGREG = "estimator: sklearn.linear_model.LogisticRegression"


def with_params(text: str, estimator: str, params: str) -> str:
    """The release with its model's estimator and params block replaced (params: YAML lines, 6-space indent)."""
    text = edit(text, _LOGREG, f"estimator: {estimator}")
    return edit(text, _PARAMS_BLOCK, "    params:\n" + "".join(f"      {line}\n" for line in params.splitlines()))


def test_forest_over_the_training_budget_is_refused_before_any_fit(
    release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = with_params(
        release.read_text(encoding="utf-8"),
        "sklearn.ensemble.RandomForestClassifier",
        "n_estimators: 200000\nmax_depth: 40",
    )
    release.write_text(text, encoding="utf-8")
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    file = str(release)
    assert_reported(err, file, line_of(text, "n_estimators: 200000"), "models.cancer-logreg.params.n_estimators",
                    "200000 is out of range: must be at most 1000 (the training budget")  # fmt: skip
    assert_reported(err, file, line_of(text, "max_depth: 40"), "models.cancer-logreg.params.max_depth", "at most 32")
    assert len(problem_lines(err, file)) == 2  # no probe fit of a release already over budget


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("sklearn.linear_model.LogisticRegression", "penalty: l1\nsolver: liblinear"),
        ("sklearn.linear_model.LogisticRegression", "penalty: elasticnet\nsolver: saga\nl1_ratio: 0.5"),
        ("sklearn.ensemble.RandomForestClassifier", "n_estimators: 1000\nmax_samples: 426\nmax_depth: 32"),
        ("sklearn.ensemble.GradientBoostingClassifier", "n_estimators: 1000\nn_iter_no_change: 5"),
        ("sklearn.tree.DecisionTreeClassifier", "max_depth: null\nmax_leaf_nodes: 4096"),
    ],
    ids=["l1-liblinear", "elasticnet-saga", "forest-at-budget", "boosting-early-stop", "tree-unbounded-depth"],
)
def test_compatible_parameters_and_the_budget_limits_pass(
    release: Path, capsys: pytest.CaptureFixture[str], estimator: str, params: str
) -> None:
    """The probe refuses combinations, not valid releases: sizes at the budget's limits and every value that only
    fits the real data's shape (426 training rows of 569) pass."""
    release.write_text(with_params(release.read_text(encoding="utf-8"), estimator, params), encoding="utf-8")
    code, out, err = run_cli(capsys, str(release))
    assert (code, out.strip()) == (0, f"{release}: ok"), err


def test_the_probe_fits_the_training_split_of_the_data(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One more sample than training's 426 rows: refused by the fit on the data's shape, as training would."""
    text = with_params(
        release.read_text(encoding="utf-8"), "sklearn.ensemble.RandomForestClassifier", "max_samples: 427"
    )
    release.write_text(text, encoding="utf-8")
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    assert_reported(err, str(release), line_of(text, "    params:"), "models.cancer-logreg.params",
                    "RandomForestClassifier refuses these parameters together when fitting: `max_samples` must be "
                    "<= n_samples=426")  # fmt: skip


def test_the_datas_shape_is_read_once_for_the_same_bytes_and_again_for_new_ones(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's shape comes from the data file's rows, read once per content: changed rows are read again."""
    from smgitops import release_checks

    reads: list[Path] = []
    read = release_checks._read_data_shape

    def counting(path: Path) -> tuple[int, int, int] | None:
        reads.append(path)
        return read(path)

    monkeypatch.setattr(release_checks, "_read_data_shape", counting)
    text = with_params(
        release.read_text(encoding="utf-8"), "sklearn.ensemble.RandomForestClassifier", "max_samples: 427"
    )
    release.write_text(text, encoding="utf-8")
    data = release.parents[1] / "data" / DATA.name
    for _ in range(2):  # 426 training rows of 569, each time; the rows were read once
        code, _out, err = run_cli(capsys, str(release))
        assert code == 2 and "`max_samples` must be <= n_samples=426" in err, err
    assert len(reads) <= 1  # none at all when an earlier test in this process read the same bytes
    rows = DATA.read_bytes().splitlines(keepends=True)
    data.write_bytes(b"".join(rows) + b"".join(rows[-4:]))  # 573 rows: 429 of them train
    old_digest = hashlib.sha256(DATA.read_bytes()).hexdigest()
    new_digest = hashlib.sha256(data.read_bytes()).hexdigest()
    release.write_text(edit(text, old_digest, new_digest), encoding="utf-8")
    before = len(reads)
    for _ in range(2):
        code, out, err = run_cli(capsys, str(release))
        assert (code, out.strip()) == (0, f"{release}: ok"), err
    assert reads[before:] == [data]


def test_default_params_validate_without_importing_scikit_learn(release: Path) -> None:
    """`params: {}` cannot be refused by a fit, so validate does not pay for importing scikit-learn."""
    release.write_text(edit(release.read_text(encoding="utf-8"), _PARAMS_BLOCK, "    params: {}\n"), encoding="utf-8")
    probe = (
        "import sys\n"
        "from smgitops.cli import main\n"
        "code = main(['validate', sys.argv[1]])\n"
        "print('SKLEARN', 'sklearn' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    res = subprocess.run([sys.executable, "-c", probe, str(release)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"{release}: ok", "SKLEARN False"]


def test_a_release_that_passed_is_not_checked_again_by_scikit_learn_or_the_schema(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command loads its release: parameters scikit-learn accepted (same estimator, values, data shape and
    installed numeric stack) and a document the schema accepted are not checked again; changed values are, and a
    refusal is never kept."""
    probe = (
        "import sys\n"
        "from smgitops.cli import main\n"
        "code = main(['validate', sys.argv[1]])\n"
        "print('SKLEARN', 'sklearn' in sys.modules, 'JSONSCHEMA', 'jsonschema' in sys.modules)\n"
        "sys.exit(code)\n"
    )

    def validate() -> tuple[int, list[str]]:
        res = subprocess.run([sys.executable, "-c", probe, str(release)], capture_output=True, text=True, timeout=120)
        return res.returncode, res.stdout.splitlines()

    # A fresh interpreter each: the second finds both verdicts on disk and never imports scikit-learn or jsonschema.
    assert validate() == (0, [f"{release}: ok", "SKLEARN True JSONSCHEMA True"])
    assert validate() == (0, [f"{release}: ok", "SKLEARN False JSONSCHEMA False"])
    # kept in the user's cache directory, never in the checkout (where a commit could bring a verdict along)
    kept = Path(os.environ["XDG_CACHE_HOME"]) / "smgitops" / "validated"
    assert len(list(kept.iterdir())) == 2  # the schema's and the parameters'
    assert not any(p.name == "validated" for p in release.parents[1].rglob("*"))

    # Then main() in this process (both libraries are imported here already), the checks counted where they run:
    # scikit-learn is asked for the parameter names, the schema's validator for the document's problems.
    from smgitops import estimators, release_checks

    asked: list[str] = []
    accepted, schema_problems = estimators.accepted_params, release_checks._schema_problems

    def asking_sklearn(dotted: str) -> frozenset[str]:
        asked.append("sklearn")
        return accepted(dotted)

    def asking_schema(doc: object, rep: object) -> None:
        asked.append("schema")
        schema_problems(doc, rep)

    monkeypatch.setattr(estimators, "accepted_params", asking_sklearn)
    monkeypatch.setattr(release_checks, "_schema_problems", asking_schema)

    def checks() -> tuple[int, list[str]]:
        asked.clear()
        code, _out, _err = run_cli(capsys, str(release))
        return code, sorted(asked)

    assert checks() == (0, [])  # the verdicts the other processes kept
    release.write_text(edit(release.read_text(encoding="utf-8"), "C: 1.0", "C: -1.0"), encoding="utf-8")
    assert checks() == (2, ["schema", "sklearn"])  # scikit-learn refuses C < 0
    assert checks() == (2, ["sklearn"])  # every time; the schema passed the document: its verdict is kept
    release.write_text(edit(release.read_text(encoding="utf-8"), "C: -1.0", "C: 0.5"), encoding="utf-8")
    assert checks() == (0, ["schema", "sklearn"])
    assert checks() == (0, [])
    release.write_text(edit(release.read_text(encoding="utf-8"), "seed: 7", "seed: -7"), encoding="utf-8")
    for _ in range(2):  # the schema refuses a negative seed, every time
        code, ran = checks()
        assert code == 2 and "schema" in ran


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("image: 1.2-1-cpu-py3", "image: 1.2-1-gpu-py3", "image"),
        ("timezone: Europe/Berlin", "timezone: ../../etc/passwd", "teardown.timezone"),
        ("region: us-east-1", "region: US_EAST", "region"),
        ("instance_type: ml.t2.large", "instance_type: t2.large", "endpoint.instance_type"),
        ("C: 1.0", 'C: 1.0\n      "": 1', 'models.cancer-logreg.params[""]'),
        (
            "estimator: sklearn.linear_model.LogisticRegression",
            'estimator: "not dotted!"',
            "models.cancer-logreg.estimator",
        ),
    ],
)
def test_one_bad_value_is_one_problem(
    release: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str
) -> None:
    """A value the schema refuses is not reported a second time by the semantic check of the same field."""
    release.write_text(edit(release.read_text(encoding="utf-8"), old, new), encoding="utf-8")
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    lines = problem_lines(err, str(release))
    assert len(lines) == 1 and f": {field}: " in lines[0], err


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ('"data/\\u0000breast_cancer.csv"', "control character"),
        ("data/" + "x" * 300 + ".csv", "at most 255"),
    ],
    ids=["nul-byte", "name-too-long"],
)
def test_data_path_the_filesystem_refuses_is_a_problem_not_a_traceback(
    release: Path, capsys: pytest.CaptureFixture[str], path: str, reason: str
) -> None:
    text = edit(release.read_text(encoding="utf-8"), "path: data/breast_cancer.csv", f"path: {path}")
    release.write_text(text, encoding="utf-8")
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    assert_reported(err, str(release), line_of(text, "path: "), "models.cancer-logreg.data.path", reason)
    assert len(problem_lines(err, str(release))) == 1, err


# ---------------------------------------------------------------------------------------------------------------
# whole-file problems: size, encoding, documents
# ---------------------------------------------------------------------------------------------------------------


def _write_bytes(release: Path, data: bytes) -> None:
    release.write_bytes(data)


def _refused(capsys: pytest.CaptureFixture[str], release: Path, line: int, reason: str) -> str:
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    assert_reported(err, str(release), line, "(document)", reason)
    return err


def test_file_over_one_mebibyte_is_refused_before_parsing(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # invalid YAML after the limit: had it been parsed, the error would be a syntax error
    release.write_bytes(release.read_bytes() + b"# " + b"x" * MAX_FILE_BYTES + b"\n: : [")

    def no_parse(*_a: object, **_k: object) -> None:
        raise AssertionError("parsed a file over the size limit")

    monkeypatch.setattr("smgitops.release_checks.parse", no_parse)
    _refused(capsys, release, 1, "over the 1048576-byte (1 MiB) limit")


def test_non_utf8_reports_byte_offset_and_line(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = release.read_bytes().replace(b"environment: dev ", b"environment: d\xe9v ", 1)
    release.write_bytes(data)
    offset = data.index(b"\xe9")
    err = _refused(capsys, release, line_of(data.decode("latin-1"), "environment: d"), f"byte offset {offset}")
    assert "byte 0xe9" in err


def test_utf16_is_refused(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release.write_bytes(release.read_text(encoding="utf-8").encode("utf-16"))
    _refused(capsys, release, 1, "UTF-16")


def test_utf8_bom_is_accepted(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release.write_bytes(b"\xef\xbb\xbf" + release.read_bytes())
    code, out, err = run_cli(capsys, str(release))
    assert (code, err) == (0, "")
    assert out.strip() == f"{release}: ok"
    # and line numbers still match the editor's
    release.write_bytes(b"\xef\xbb\xbf" + edit(SHIPPED.read_text(), "weight: 100", "weight: 99").encode())
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    assert_reported(err, str(release), line_of(SHIPPED.read_text(), "variants:"), "variants", "sum to 99")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "the file is empty"),
        ("# yaml-language-server: $schema=./release.schema.json\n# nothing else\n", "the file is empty"),
        ("---\n", "top level must be a mapping"),
        ("- environment: dev\n", "top level must be a mapping of release fields, got a list"),
        ("just text\n", "got the string 'just text'"),
    ],
    ids=["empty", "comments-only", "null-document", "list", "scalar"],
)
def test_not_a_mapping(release: Path, capsys: pytest.CaptureFixture[str], content: str, reason: str) -> None:
    release.write_text(content, encoding="utf-8")
    _refused(capsys, release, 1, reason)


def test_multiple_documents(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = release.read_text(encoding="utf-8") + "---\nenvironment: prod\n"
    release.write_text(text, encoding="utf-8")
    _refused(capsys, release, len(SHIPPED.read_text().splitlines()) + 1, "more than one YAML document")


def test_yaml_syntax_error_has_position(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = edit(release.read_text(encoding="utf-8"), "  bake_minutes: 10", "\tbake_minutes: 10")
    release.write_text(text, encoding="utf-8")
    _refused(capsys, release, line_of(text, "\tbake_minutes"), "YAML syntax error")


def test_control_and_separator_characters(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = edit(release.read_text(encoding="utf-8"), "# percent of the traffic", "# percent\u2028of the traffic")
    release.write_text(text, encoding="utf-8")
    _refused(capsys, release, line_of(text, "percent\u2028"), "U+2028")
    text = edit(SHIPPED.read_text(encoding="utf-8"), "# percent of the traffic", "# percent\x00")
    release.write_text(text, encoding="utf-8")
    _refused(capsys, release, line_of(text, "percent\x00"), "not allowed in YAML")


def test_directives_are_refused(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release.write_text("%YAML 1.1\n---\n" + SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    _refused(capsys, release, 1, "directives")


def test_billion_laughs_is_refused_without_expanding(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ['a0: &a0 ["lol"]'] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 30)]
    release.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _out, err = run_cli(capsys, str(release))  # 10**29 strings if expanded: returning at all is the proof
    assert code == 2
    assert_reported(err, str(release), 1, "a0", "anchor '&a0' refused")
    assert_reported(err, str(release), 2, "a1[0]", "alias '*a0' refused")


def test_python_tag_is_never_constructed(release: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = edit(
        release.read_text(encoding="utf-8"),
        "seed: 7",
        f'seed: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ["{marker}"]]',
    )
    release.write_text(text, encoding="utf-8")
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    assert_reported(err, str(release), line_of(text, "seed: !!python"), "models.cancer-logreg.seed", "refused")
    assert not marker.exists()


def test_deep_nesting_is_bounded(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 30 brackets pass the pre-scan (tests/test_validate_bounds.py); under params.C they nest 34 levels deep
    text = edit(release.read_text(encoding="utf-8"), "C: 1.0", "C: " + "[" * 30 + "]" * 30)
    release.write_text(text, encoding="utf-8")
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    line = line_of(text, "C: [[[")
    deep = [e for e in problem_lines(err, str(release)) if "nested deeper than 32 levels" in e]
    assert len(deep) == 1
    assert deep[0].startswith(f"{release}:{line}:")
    assert ": models.cancer-logreg.params.C[0][0]" in deep[0]


# ---------------------------------------------------------------------------------------------------------------
# reporting: every problem, every file, paths as given, JSON
# ---------------------------------------------------------------------------------------------------------------


def test_every_problem_of_a_file_in_one_run(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = release.read_text(encoding="utf-8")
    for old, new in [
        ("weight: 100", "weight: 60"),
        ("enabled: true", "enabled: yes"),
        ('sha256: "432ff', 'sha256: "532ff'),
        ("instance_type: ml.t2.large", "instance_type: ml.m5.large"),
        ("  bake_minutes: 10", "  bake_minutes: 10\n  extra: 1"),
    ]:
        text = edit(text, old, new)
    release.write_text(text, encoding="utf-8")
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    f = str(release)
    assert_reported(err, f, line_of(text, "variants:"), "variants", "sum to 60")
    assert_reported(err, f, line_of(text, "enabled: yes"), "endpoint.data_capture.enabled", "YAML 1.1")
    assert_reported(err, f, line_of(text, 'sha256: "532ff'), "models.cancer-logreg.data.sha256", "actual 432ff")
    assert_reported(err, f, line_of(text, "ml.m5.large"), "endpoint.instance_type", "allowlist")
    assert_reported(err, f, line_of(text, "extra: 1"), "canary.extra", "unknown field")
    assert len(problem_lines(err, f)) == 5
    assert err.splitlines()[-1] == "smgitops validate: 5 problems found"
    # problems come in file order
    lines = [int(entry.split(":")[1]) for entry in problem_lines(err, f)]
    assert lines == sorted(lines)


def test_longest_model_id_and_environment_fit_a_sagemaker_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The schema's bounds are what keeps <model-id>-<environment>-<12 hex> within SageMaker's 63 characters."""
    dev = make_repo(tmp_path / "repo")
    environment, model_id = "e" + "9" * 11, "m" * 36
    release = dev.with_name(f"{environment}.yaml")
    text = edit(dev.read_text(encoding="utf-8"), "environment: dev", f"environment: {environment}")
    text = edit(text, "name: smgitops-dev", f"name: smgitops-{environment}")
    release.write_text(text.replace("cancer-logreg", model_id), encoding="utf-8")
    code, out, err = run_cli(capsys, str(release))
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"{release}: ok"]
    digest = load_release(release).models[model_id].artifact_sha256
    name = naming.model_name(model_id, environment, digest)
    assert len(name) == 62 <= naming.MAX_NAME_LENGTH
    assert naming.split_model_name(name) == (model_id, environment, digest[:12])


def test_two_files_reported_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = make_repo(tmp_path / "repo")
    prod = dev.with_name("prod.yaml")
    shutil.copyfile(ROOT / "releases" / "prod.yaml", prod)
    ok = dev.with_name("staging.yaml")  # a third, valid file
    staging = edit(SHIPPED.read_text(), "environment: dev", "environment: staging")
    ok.write_text(edit(staging, "name: smgitops-dev", "name: smgitops-staging"), encoding="utf-8")
    dev.write_text(edit(dev.read_text(), "weight: 100", "weight: 50"), encoding="utf-8")
    prod.write_text(edit(prod.read_text(), "region: us-east-1", "region: eu-west-1"), encoding="utf-8")
    code, out, err = run_cli(capsys, str(dev), str(ok), str(prod))
    assert code == 2
    assert_reported(err, str(dev), line_of(dev.read_text(), "variants:"), "variants", "sum to 50")
    assert_reported(err, str(prod), line_of(prod.read_text(), "region:"), "region", "allowlist")
    assert out.splitlines() == [f"{ok}: ok"]
    assert err.splitlines()[-1] == "smgitops validate: 2 problems found"


def test_missing_file_and_directory_with_the_rest(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = release.with_name("nope.yaml")
    code, out, err = run_cli(capsys, str(missing), str(release.parent), str(release))
    assert code == 2
    assert f"{missing}: (document): no such file" in err.splitlines()
    assert f"{release.parent}: (document): is a directory" in err
    assert out.splitlines() == [f"{release}: ok"]
    assert "Traceback" not in err


def test_paths_are_reported_as_given(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    release.write_text(edit(release.read_text(), "weight: 100", "weight: 10"), encoding="utf-8")
    monkeypatch.chdir(release.parent.parent)
    code, _out, err = run_cli(capsys, "releases/dev.yaml")
    assert code == 2
    assert err.startswith(f"releases/dev.yaml:{line_of(release.read_text(), 'variants:')}:")
    # ./ is kept too: the message is for the person who typed the command
    code, _out, err = run_cli(capsys, "./releases/dev.yaml")
    assert err.startswith("./releases/dev.yaml:")


def test_json_output(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = release.with_name("staging.yaml")
    staging = edit(SHIPPED.read_text(), "environment: dev", "environment: staging")
    good.write_text(edit(staging, "name: smgitops-dev", "name: smgitops-staging"), encoding="utf-8")
    text = edit(release.read_text(), "seed: 7", "seed: 7.5")
    release.write_text(text, encoding="utf-8")
    code, out, err = run_cli(capsys, "--json", str(release), str(good))
    assert code == 2
    assert err == ""
    results = json.loads(out)
    assert [r["file"] for r in results] == [str(release), str(good)]
    assert [r["ok"] for r in results] == [False, True]
    assert results[0]["problems"] == [
        {
            "file": str(release),
            "line": line_of(text, "seed: 7.5"),
            "col": text.splitlines()[line_of(text, "seed: 7.5") - 1].index("7.5") + 1,
            "field": "models.cancer-logreg.seed",
            "reason": "expected an integer, got the number 7.5",
        }
    ]
    code, out, _err = run_cli(capsys, "--json", str(good))
    assert code == 0
    assert json.loads(out) == [{"file": str(good), "ok": True, "problems": [], "notes": []}]


def test_unused_model_is_allowed_with_a_note(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = release.read_text(encoding="utf-8")
    block = text[text.index(_MODEL_LINE) : text.index("\nvariants:")]
    candidate = block.replace("cancer-logreg:", "cancer-logreg-v2:").replace("C: 1.0", "C: 0.5")
    release.write_text(text.replace(block, block + "\n" + candidate, 1), encoding="utf-8")
    code, out, err = run_cli(capsys, str(release))
    assert (code, err) == (0, "")
    assert f"{release}: note: model 'cancer-logreg-v2' is defined but served by no variant" in out
    assert f"{release}: ok" in out.splitlines()


def test_instance_type_allowlist_env_override(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    release.write_text(edit(release.read_text(), "ml.t2.large", "ml.m5.large"), encoding="utf-8")
    assert run_cli(capsys, str(release))[0] == 2
    monkeypatch.setenv("SMGITOPS_ALLOWED_INSTANCE_TYPES", "ml.t2.large, ml.m5.large")
    assert run_cli(capsys, str(release))[0] == 0


def test_default_allowlist_takes_the_cheaper_t2_medium(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release.write_text(edit(release.read_text(), "ml.t2.large", "ml.t2.medium"), encoding="utf-8")
    assert run_cli(capsys, str(release))[0] == 0


def test_ml_t3_is_refused_even_when_the_allowlist_names_it(
    release: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SageMaker hosts no endpoint on ml.t3: a release naming it would pass validate and fail at terraform plan."""
    text = edit(release.read_text(), "ml.t2.large", "ml.t3.xlarge")
    release.write_text(text, encoding="utf-8")
    monkeypatch.setenv("SMGITOPS_ALLOWED_INSTANCE_TYPES", "ml.t3.xlarge")
    code, _out, err = run_cli(capsys, str(release))
    assert code == 2
    reason = "'ml.t3.xlarge' is not offered for SageMaker real-time endpoints"
    assert_reported(err, str(release), line_of(text, "ml.t3.xlarge"), "endpoint.instance_type", reason)
    assert_reported(err, str(release), line_of(text, "ml.t3.xlarge"), "endpoint.instance_type", "use ml.t2.xlarge")
    assert len(problem_lines(err, str(release))) == 1


def test_default_allowlist_is_sagemaker_hosting_types_only() -> None:
    """Every default type is one the SageMaker API accepts for a production variant (botocore's own model)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    hosting = set(model.shape_for("ProductionVariantInstanceType").enum)
    assert set(DEFAULT_ALLOWED_INSTANCE_TYPES) <= hosting
    assert not any(t.startswith("ml.t3.") for t in hosting)  # why ml.t3 gets its own message


# ---------------------------------------------------------------------------------------------------------------
# library API: load_release, load_release_text, validate_file
# ---------------------------------------------------------------------------------------------------------------


def test_load_release_raises_every_problem(release: Path) -> None:
    text = edit(edit(release.read_text(), "weight: 100", "weight: 1"), "seed: 7", "seed: yes")
    release.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidRelease) as info:
        load_release(release)
    fields = {p.field for p in info.value.problems}
    assert fields == {"variants", "models.cancer-logreg.seed"}
    assert info.value.exit_code == 2
    assert validate_file(release) == info.value.problems


def test_load_release_text_checks_data_against_the_repository_of_path(release: Path) -> None:
    text = release.read_text(encoding="utf-8")
    assert load_release_text(text, release).models["cancer-logreg"].data.path == "data/breast_cancer.csv"
    (release.parent.parent / "data" / "breast_cancer.csv").write_text("changed\n")
    with pytest.raises(InvalidRelease) as info:
        load_release_text(text, release)
    [problem] = info.value.problems
    assert (problem.file, problem.field) == (str(release), "models.cancer-logreg.data.sha256")
    assert problem.line == line_of(text, "      sha256:")
    assert validate_text(text, release) == [problem]


def test_load_release_text_size_limit(release: Path) -> None:
    with pytest.raises(InvalidRelease, match="1 MiB"):
        load_release_text("# " + "x" * MAX_FILE_BYTES, release)


# ---------------------------------------------------------------------------------------------------------------
# property: weights are accepted iff they are integers summing to 100
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    release = make_repo(tmp_path_factory.mktemp("weights"))
    text = release.read_text(encoding="utf-8")
    return release, text[: text.index("\nvariants:")]


_weight = st.one_of(
    st.integers(min_value=-5, max_value=110),
    st.integers(min_value=0, max_value=100),
    st.floats(min_value=0, max_value=100, allow_nan=False, allow_infinity=False),
    st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(weights=st.lists(_weight, min_size=1, max_size=10))
def test_weights_property(weights_repo: tuple[Path, str], weights: list[int | float | bool]) -> None:
    release, head = weights_repo
    body = "".join(
        f"  - name: v{i}\n    model: cancer-logreg\n    weight: {json.dumps(w)}\n" for i, w in enumerate(weights)
    )
    tail = SHIPPED.read_text(encoding="utf-8")
    tail = tail[tail.index("\ncanary:") :]
    problems = validate_text(f"{head}\nvariants:\n{body}{tail}", release)
    ints = all(isinstance(w, int) and not isinstance(w, bool) for w in weights)
    expected_ok = ints and all(0 <= w <= 100 for w in weights) and sum(weights) == 100
    assert (problems == []) == expected_ok, problems
    assert all(p.field.startswith("variants") for p in problems)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(split=st.integers(min_value=0, max_value=100))
def test_any_integer_split_of_two_variants_passes(weights_repo: tuple[Path, str], split: int) -> None:
    release, head = weights_repo
    body = (
        f"  - name: primary\n    model: cancer-logreg\n    weight: {split}\n"
        f"  - name: canary\n    model: cancer-logreg\n    weight: {100 - split}\n"
    )
    tail = SHIPPED.read_text(encoding="utf-8")
    assert validate_text(f"{head}\nvariants:\n{body}{tail[tail.index(chr(10) + 'canary:') :]}", release) == []


# ---------------------------------------------------------------------------------------------------------------
# the real console script: no traceback, no AWS
# ---------------------------------------------------------------------------------------------------------------

SMGITOPS = Path(sys.executable).with_name("smgitops")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _no_aws_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ENDPOINT_URL"] = f"https://127.0.0.1:{_closed_port()}"  # any AWS call would fail loudly here
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def test_console_script_refuses_without_traceback(release: Path) -> None:
    text = edit(release.read_text(), "weight: 100", "weight: 100.0")
    release.write_text(text, encoding="utf-8")
    # scikit-learn's verdict on the (valid) parameters is kept by this process first: the console script's run is
    # about its output and exit code, and need not import scikit-learn again (about 0.9 s). The verdict test above
    # runs that check in a fresh interpreter.
    assert [p.field for p in validate_file(release)] == ["variants[0].weight"]
    res = subprocess.run(
        [str(SMGITOPS), "validate", "releases/dev.yaml"],
        cwd=release.parent.parent,
        env=_no_aws_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        f"releases/dev.yaml:{line_of(text, 'weight: 100.0')}:13: variants[0].weight: "
        "expected an integer, got the number 100.0",
        "smgitops validate: 1 problem found",
    ]


def test_console_script_missing_file(tmp_path: Path) -> None:
    res = subprocess.run(
        [str(SMGITOPS), "validate", "releases/nope.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 2
    assert "releases/nope.yaml: (document): no such file" in res.stderr
    assert "Traceback" not in res.stderr


def test_validate_makes_no_aws_call_and_never_imports_boto3(release: Path) -> None:
    """With no credentials and AWS_ENDPOINT_URL at a closed port, validate still answers; boto3 is never loaded."""
    probe = (
        "import sys\n"
        "from smgitops.cli import main\n"
        "code = main(['validate', sys.argv[1]])\n"
        "loaded = sorted(m for m in ('boto3', 'botocore', 'moto', 's3transfer') if m in sys.modules)\n"
        "print('LOADED', loaded)\n"
        "sys.exit(code)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", probe, str(release)], env=_no_aws_env(), capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"{release}: ok", "LOADED []"]
    res = subprocess.run(
        [str(SMGITOPS), "validate", str(release), "--json"],
        env=_no_aws_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0
    assert json.loads(res.stdout)[0]["ok"] is True
