"""``code/inference.py`` as the serving container runs it: from the built archive, handler by handler.

The archive is the one ``smgitops train`` builds for the shipped dev release; it is extracted and its
``code/inference.py`` imported by path, then ``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn`` are called
the way the container calls them.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import importlib.util
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import types
from pathlib import Path
from typing import Any

import pytest

from smgitops import estimators, training
from smgitops.cli import main

MODEL = "cancer-logreg"
JSON = "application/json"
CSV = "text/csv"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, project_root: Path) -> Path:
    out = tmp_path_factory.mktemp("artifacts")
    # `smgitops train` through the CLI's main() in this process (conftest pins the BLAS kernels as the console
    # script does): the serving tests import scikit-learn anyway, so only the fit is paid here.
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["train", str(project_root / "releases" / "dev.yaml"), "--out", str(out)])
    assert code == 0, err.getvalue()
    extracted = tmp_path_factory.mktemp("model")
    with tarfile.open(training.artifact_path(out, MODEL)) as tar:
        tar.extractall(extracted, filter="data")
    return extracted


def load_serving_script(model_dir: Path, name: str) -> types.ModuleType:
    """Import the archive's code/inference.py by path, as the container imports the user module."""
    spec = importlib.util.spec_from_file_location(name, model_dir / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inference(model_dir: Path) -> types.ModuleType:
    return load_serving_script(model_dir, "smgitops_test_inference")


@pytest.fixture(scope="module")
def model(inference: types.ModuleType, model_dir: Path) -> Any:
    return inference.model_fn(str(model_dir))


@pytest.fixture(scope="module")
def dataset(project_root: Path) -> tuple[list[str], list[list[str]], list[int]]:
    with (project_root / "data" / "breast_cancer.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0][:-1], [r[:-1] for r in rows[1:]], [int(r[-1]) for r in rows[1:]]


def invoke(inference: types.ModuleType, model: Any, body: Any, content_type: str, accept: str = JSON) -> Any:
    """The container's order of calls for one request."""
    data = inference.input_fn(body, content_type)
    prediction = inference.predict_fn(data, model)
    return inference.output_fn(prediction, accept)


def client_error(inference: types.ModuleType, model: Any, body: Any, content_type: str, accept: str = JSON) -> Any:
    with pytest.raises(inference.RequestError) as info:
        invoke(inference, model, body, content_type, accept)
    return info.value


# ----------------------------------------------------------------------------------------------------------------
# Python 3.9 compatibility
# ----------------------------------------------------------------------------------------------------------------


def test_serving_script_parses_as_python_3_9(model_dir: Path) -> None:
    source = (model_dir / "code" / "inference.py").read_text(encoding="utf-8")
    assert estimators.SERVING_PYTHON == (3, 9)
    ast.parse(source, feature_version=estimators.SERVING_PYTHON)


def _python39() -> str | None:
    """A working Python 3.9 interpreter, if this machine has one (pyenv shims may exist without working)."""
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = [str(p) for p in sorted(pyenv.glob("3.9.*/bin/python3.9"), reverse=True)] if pyenv.is_dir() else []
    found = shutil.which("python3.9")
    if found:
        candidates.append(found)
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(tuple(sys.version_info[:2]) == (3, 9))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def test_request_parsing_runs_on_a_real_python_3_9(model_dir: Path) -> None:
    """input_fn and output_fn use only the standard library, so a bare Python 3.9 can run them."""
    python39 = _python39()
    if python39 is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    script = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('inference', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "batch = m.input_fn(b'{\"instances\": [[1, 2.5], {\"a\": 3}]}', 'application/json')\n"
        "csv_batch = m.input_fn('a,b\\n1,2\\n', 'text/csv; charset=utf-8')\n"
        "try:\n"
        "    m.input_fn('[[1, NaN]]', 'application/json')\n"
        "except m.RequestError as e:\n"
        "    status = e.status_code\n"
        "print(json.dumps([sys.version_info[:2], batch.rows, csv_batch.header, csv_batch.rows, status,"
        " m.output_fn({'predictions': [1]}, '*/*')]))\n"
    )
    result = subprocess.run(
        [python39, "-I", "-c", script, str(model_dir / "code" / "inference.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    version, rows, header, csv_rows, status, output = json.loads(result.stdout)
    assert version == [3, 9]
    assert rows == [[1.0, 2.5], {"a": 3.0}]
    assert (header, csv_rows) == (["a", "b"], [[1.0, 2.0]])
    assert status == 400
    assert json.loads(output) == {"predictions": [1]}


# ----------------------------------------------------------------------------------------------------------------
# Requests that succeed
# ----------------------------------------------------------------------------------------------------------------


def test_model_fn_reads_features_and_classes_from_the_manifest(model: Any, dataset: Any) -> None:
    features, _, _ = dataset
    assert model.feature_names == features
    assert model.classes == [0, 1]
    assert model.model_id == MODEL


def test_json_instances_predict_like_the_estimator(inference: types.ModuleType, model: Any, dataset: Any) -> None:
    _, rows, target = dataset
    instances = [[float(v) for v in row] for row in rows[:200]]
    response = json.loads(invoke(inference, model, json.dumps({"instances": instances}), JSON))
    assert set(response) == {"model", "classes", "predictions", "probabilities"}
    assert response["model"] == MODEL and response["classes"] == [0, 1]
    assert response["predictions"] == model.estimator.predict(instances).tolist()
    assert len(response["probabilities"]) == 200
    for label, probabilities in zip(response["predictions"], response["probabilities"], strict=True):
        assert math.isclose(sum(probabilities), 1.0, rel_tol=1e-9)
        assert label == response["classes"][probabilities.index(max(probabilities))]
    correct = sum(p == t for p, t in zip(response["predictions"], target[:200], strict=True))
    assert correct / 200 > 0.9


def test_bare_rows_records_and_csv_give_the_same_answer(inference: types.ModuleType, model: Any, dataset: Any) -> None:
    features, rows, _ = dataset
    numbers = [[float(v) for v in row] for row in rows[:5]]
    expected = invoke(inference, model, json.dumps({"instances": numbers}), JSON)
    records = [dict(zip(features, row, strict=True)) for row in numbers]
    bodies: list[tuple[Any, str]] = [
        (json.dumps(numbers), JSON),
        (json.dumps(records).encode(), JSON),
        (json.dumps({"instances": records}), "application/json; charset=utf-8"),
        ("\n".join(",".join(row) for row in rows[:5]), CSV),
        (("\r\n".join([",".join(features)] + [",".join(row) for row in rows[:5]]) + "\r\n").encode(), CSV),
        ("\ufeff" + "\n".join(",".join(row) for row in rows[:5]) + "\n\n", "text/csv; charset=UTF-8"),
    ]
    for body, content_type in bodies:
        assert invoke(inference, model, body, content_type) == expected, (content_type, body[:40])


@pytest.mark.parametrize("accept", [JSON, "*/*", "application/*", "", None, "text/html, application/json;q=0.9"])
def test_json_accept_variants(inference: types.ModuleType, model: Any, dataset: Any, accept: str | None) -> None:
    _, rows, _ = dataset
    response = invoke(inference, model, ",".join(rows[0]), CSV, accept)  # type: ignore[arg-type]
    assert json.loads(response)["predictions"] in ([0], [1])


def test_row_limit_is_inclusive(inference: types.ModuleType, model: Any, dataset: Any) -> None:
    _, rows, _ = dataset
    body = "\n".join(",".join(rows[i % len(rows)]) for i in range(inference.MAX_ROWS))
    assert len(json.loads(invoke(inference, model, body, CSV))["predictions"]) == inference.MAX_ROWS


# ----------------------------------------------------------------------------------------------------------------
# Requests a client gets wrong: a 4xx with a message, never a crash
# ----------------------------------------------------------------------------------------------------------------

ROW = ",".join(["1.5"] * 30)
JSON_ROW = json.dumps([1.5] * 30)

BAD_REQUESTS = [
    # (id, body, content type, accept, status, message fragment)
    ("unsupported-content-type", ROW, "application/x-npy", JSON, 415, "unsupported content type"),
    ("unsupported-charset", ROW, "text/csv; charset=latin-1", JSON, 415, "charset"),
    ("unsupported-accept", ROW, CSV, "text/csv", 406, "Accept"),
    ("empty-body", b"", JSON, JSON, 400, "empty"),
    ("blank-body", "  \n ", CSV, JSON, 400, "empty"),
    ("not-utf8", b"\xff\xfe1,2", CSV, JSON, 400, "UTF-8"),
    ("malformed-json", '{"instances": [[1, 2]', JSON, JSON, 400, "not valid JSON"),
    ("json-nan", "[[" + ", ".join(["NaN"] * 30) + "]]", JSON, JSON, 400, "finite"),
    ("json-infinity", "[[Infinity]]", JSON, JSON, 400, "finite"),
    ("json-overflow", "[[" + ", ".join(["1e999"] * 30) + "]]", JSON, JSON, 400, "finite"),
    ("json-huge-int", "[[" + ", ".join(["1" + "0" * 400] * 30) + "]]", JSON, JSON, 400, "finite"),
    ("json-string-value", '[["1.5"' + ", 1.5" * 29 + "]]", JSON, JSON, 400, "a string is not a number"),
    ("json-bool-value", "[[true" + ", 1.5" * 29 + "]]", JSON, JSON, 400, "boolean"),
    ("json-null-value", "[[null" + ", 1.5" * 29 + "]]", JSON, JSON, 400, "null"),
    ("json-scalar", "42", JSON, JSON, 400, "list of rows"),
    ("json-flat-row", JSON_ROW, JSON, JSON, 400, "row 0 is a number"),
    ("json-other-key", '{"inputs": [' + JSON_ROW + "]}", JSON, JSON, 400, "instances"),
    ("json-no-rows", '{"instances": []}', JSON, JSON, 400, "no rows"),
    ("json-short-row", "[[1.5, 2.5]]", JSON, JSON, 400, "row 0 has 2 values; the model takes 30"),
    ("json-long-row", "[" + json.dumps([1.5] * 31) + "]", JSON, JSON, 400, "31 values"),
    ("json-record-missing", '[{"mean_radius": 1.0}]', JSON, JSON, 400, "missing features"),
    ("json-nested-deep", "[" * 100000 + "]" * 100000, JSON, JSON, 400, "JSON"),
    ("csv-text-cell", "1.5,abc" + ",1.5" * 28, CSV, JSON, 400, "row 0, column 1: 'abc' is not a number"),
    ("csv-nan-cell", "nan" + ",1.5" * 29, CSV, JSON, 400, "finite"),
    ("csv-inf-cell", "1.5,-inf" + ",1.5" * 28, CSV, JSON, 400, "finite"),
    ("csv-short-row", "1.5,2.5", CSV, JSON, 400, "row 0 has 2 values"),
    ("csv-ragged", ROW + "\n1.5", CSV, JSON, 400, "row 1 has 1 values"),
    ("csv-bad-quote", '1.5,"2.5' + ",1.5" * 28, CSV, JSON, 400, "not valid CSV"),
    ("csv-wrong-header", "a,b\n1.5,2.5", CSV, JSON, 400, "CSV header does not match"),
    ("csv-header-only", "mean_radius,mean_texture", CSV, JSON, 400, "no data rows"),
]


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_REQUESTS],
)
def test_bad_request_is_a_client_error_with_a_message(
    inference: types.ModuleType, model: Any, body: Any, content_type: str, accept: str, status: int, fragment: str
) -> None:
    error = client_error(inference, model, body, content_type, accept)
    # The emulator's contract: an integer status_code on the exception is the HTTP status.
    assert isinstance(error.status_code, int) and error.status_code == status
    assert fragment in str(error)
    assert json.loads(error.as_json()) == {"error": type(error).__name__, "message": str(error)}


def test_too_many_rows(inference: types.ModuleType, model: Any) -> None:
    body = "\n".join([ROW] * (inference.MAX_ROWS + 1))
    error = client_error(inference, model, body, CSV)
    assert error.status_code == 400 and f"at most {inference.MAX_ROWS}" in str(error)
    error = client_error(inference, model, json.dumps({"instances": [[1.5] * 30] * (inference.MAX_ROWS + 1)}), JSON)
    assert error.status_code == 400


def test_record_with_unknown_feature_names_it(inference: types.ModuleType, model: Any, dataset: Any) -> None:
    features, _, _ = dataset
    record = dict.fromkeys(features, 1.0)
    record["radius_of_doom"] = 2.0
    error = client_error(inference, model, json.dumps([record]), JSON)
    assert error.status_code == 400 and "radius_of_doom" in str(error)


# ----------------------------------------------------------------------------------------------------------------
# Inside the SageMaker scikit-learn container
# ----------------------------------------------------------------------------------------------------------------


class FakeContainerResponse:
    """Stands in for sagemaker_containers' worker.Response (a Flask response) with the same keyword arguments."""

    def __init__(self, response: str | None = None, status: int = 200, mimetype: str | None = None) -> None:
        self.response = response
        self.status = status
        self.mimetype = mimetype


@pytest.fixture()
def container_inference(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> types.ModuleType:
    """The serving script imported where ``sagemaker_containers.beta.framework.worker`` exists, as in the image."""
    package = types.ModuleType("sagemaker_containers")
    beta = types.ModuleType("sagemaker_containers.beta")
    framework = types.ModuleType("sagemaker_containers.beta.framework")
    worker = types.ModuleType("sagemaker_containers.beta.framework.worker")
    worker.Response = FakeContainerResponse  # type: ignore[attr-defined]
    framework.worker = worker  # type: ignore[attr-defined]
    for name, module in (
        ("sagemaker_containers", package),
        ("sagemaker_containers.beta", beta),
        ("sagemaker_containers.beta.framework", framework),
        ("sagemaker_containers.beta.framework.worker", worker),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    return load_serving_script(model_dir, "smgitops_test_inference_in_container")


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status"),
    [
        ("1.5,abc", CSV, JSON, 400),
        ("[[1.5, 2.5]]", JSON, JSON, 400),  # found in predict_fn, which knows the feature count
        (ROW, "application/x-npy", JSON, 415),
        (ROW, CSV, "text/csv", 406),
    ],
)
def test_in_the_container_a_bad_request_becomes_the_workers_response_with_a_4xx(
    container_inference: types.ModuleType, model_dir: Path, body: str, content_type: str, accept: str, status: int
) -> None:
    # The container turns any exception from a handler into a 500; only output_fn's return value sets the status.
    model = container_inference.model_fn(str(model_dir))
    response = invoke(container_inference, model, body, content_type, accept)
    assert isinstance(response, FakeContainerResponse)
    assert response.status == status and response.mimetype == JSON
    assert json.loads(response.response or "")["message"]


def test_in_the_container_a_good_request_is_a_json_response(
    container_inference: types.ModuleType, model_dir: Path, dataset: Any
) -> None:
    _, rows, _ = dataset
    model = container_inference.model_fn(str(model_dir))
    response = invoke(container_inference, model, ",".join(rows[0]), CSV)
    assert isinstance(response, FakeContainerResponse)
    assert response.status == 200 and response.mimetype == JSON
    assert json.loads(response.response or "")["predictions"] in ([0], [1])


def test_model_fn_refuses_a_manifest_that_disagrees_with_the_model(
    inference: types.ModuleType, model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["features"] = manifest["features"][:-1]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RuntimeError, match="expects 30 features but manifest.json lists 29"):
        inference.model_fn(os.fspath(broken))
