"""Serving script for the SageMaker scikit-learn container (copied into every artifact as ``code/inference.py``).

Runs in the serving image (``1.2-1-cpu-py3``: Python 3.9, scikit-learn 1.2.1), so it uses nothing newer than
Python 3.9 and imports only the standard library, numpy and (in ``model_fn``) joblib.

Request (``ContentType``)
    ``application/json``: ``{"instances": ROWS}`` or a bare ``ROWS``, where ROWS is a list of rows, each either a
    list of numbers in the model's feature order or an object mapping every feature name to a number.
    ``text/csv``: one row per line, numbers only, feature order; an optional first line equal to the feature names
    is skipped. At most ``MAX_ROWS`` rows; every value must be a finite number.

Response (``Accept``: ``application/json``, ``*/*`` or absent)
    ``{"model": ID, "classes": [c0, c1, ...], "predictions": [label, ...], "probabilities": [[p(c0), p(c1), ...],
    ...]}``: one prediction and one probability row per request row, probabilities in the order of ``classes``.

Errors a client causes get a JSON body ``{"error": NAME, "message": TEXT}`` and a 4xx status: 400 for a malformed
body, 415 for an unsupported content type, 406 for an unsupported ``Accept``. How the status reaches the client:

* In the SageMaker scikit-learn container (single-model endpoints): the container serves ``/invocations`` with
  ``sagemaker_containers``' Flask worker. Its ``Transformer`` wraps each handler so that ANY exception raised by
  ``input_fn``/``predict_fn``/``output_fn`` is re-raised as ``sagemaker_containers._errors.ClientError`` and ends as
  Flask's generic 500 page (sagemaker_containers ``_transformer.py``/``_functions.error_wrapper``; the container's
  ``serving.py`` builds that Transformer from these four handlers). Raising any exception class there, the
  container's own ``ClientError`` included, therefore yields 500. The one way to set the status is the return
  value of ``output_fn``, which the worker sends as is when it is a Flask response. So when
  ``sagemaker_containers`` is importable, the handlers do not raise for a bad request: they pass a
  :class:`RequestError` along as a value and ``output_fn`` turns it into the container's ``worker.Response`` with
  the error's status (and returns successful predictions as a ``worker.Response`` labelled application/json).
  Multi-model endpoints (the container's MMS mode) are not used by smgitops; there an exception is a 500.
* Anywhere else (the local emulator, tests): ``output_fn`` returns the JSON text, and the handlers raise
  :class:`RequestError`, whose integer attribute ``status_code`` is the HTTP status (400, 406 or 415). The emulator
  maps an exception with an integer ``status_code`` to that status and any other exception to 500.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any

MAX_ROWS = 1000
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
MANIFEST = "manifest.json"
MODEL_FILE = "model.joblib"


class RequestError(ValueError):
    """A request the model cannot serve because of the request itself (HTTP 400 unless a subclass says otherwise)."""

    status_code = 400

    def as_json(self) -> str:
        return json.dumps({"error": type(self).__name__, "message": str(self)}, sort_keys=True)


class UnsupportedMediaType(RequestError):
    status_code = 415


class NotAcceptable(RequestError):
    status_code = 406


class Model:
    """The loaded estimator and what the manifest says about its inputs and outputs."""

    def __init__(self, estimator: Any, manifest: dict[str, Any]) -> None:
        self.estimator = estimator
        self.manifest = manifest
        self.model_id = str(manifest.get("model_id", ""))
        self.feature_names = [str(n) for n in manifest["features"]]
        self.classes = list(manifest["classes"])


class Batch:
    """Parsed request rows: lists of floats in feature order, or dicts by feature name (CSV: optional header)."""

    def __init__(self, rows: list[Any], header: list[str] | None = None) -> None:
        self.rows = rows
        self.header = header


# --------------------------------------------------------------------------------------------------------------
# Container integration
# --------------------------------------------------------------------------------------------------------------


_UNSET = object()
_response_class: Any = _UNSET


def _container_response_class() -> Any:
    """The Flask response class of the SageMaker container's worker, or None outside the container (cached)."""
    global _response_class
    if _response_class is _UNSET:
        try:
            from sagemaker_containers.beta.framework import worker  # type: ignore[import-not-found]
        except ImportError:
            _response_class = None
        else:
            _response_class = worker.Response
    return _response_class


def _reject(error: RequestError) -> RequestError:
    """Raise ``error`` (emulator, tests) or hand it on as a value (container, see the module docstring)."""
    if _container_response_class() is None:
        raise error
    return error


# --------------------------------------------------------------------------------------------------------------
# The four handlers
# --------------------------------------------------------------------------------------------------------------


def model_fn(model_dir: str) -> Model:
    """Load ``model.joblib`` and ``manifest.json`` from the extracted artifact."""
    import joblib

    with open(os.path.join(model_dir, MANIFEST), encoding="utf-8") as fh:
        manifest = json.load(fh)
    estimator = joblib.load(os.path.join(model_dir, MODEL_FILE))
    model = Model(estimator, manifest)
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in is not None and int(n_in) != len(model.feature_names):
        raise RuntimeError(
            f"model.joblib expects {int(n_in)} features but manifest.json lists {len(model.feature_names)}"
        )
    return model


def input_fn(request_body: Any, request_content_type: str | None) -> Any:
    """Parse the body into a :class:`Batch` of rows (lists of floats) or records (dicts); no model needed yet."""
    try:
        media_type = _media_type(request_content_type or JSON_TYPE)
        text = _body_text(request_body)
        if media_type == JSON_TYPE:
            return _parse_json(text)
        if media_type == CSV_TYPE:
            return _parse_csv(text)
        raise UnsupportedMediaType(f"unsupported content type {request_content_type!r}: send {JSON_TYPE} or {CSV_TYPE}")
    except RequestError as error:
        return _reject(error)


def predict_fn(input_data: Any, model: Model) -> Any:
    """Predict labels and class probabilities for the parsed rows."""
    if isinstance(input_data, RequestError):
        return input_data
    if not isinstance(input_data, Batch):
        raise TypeError(f"predict_fn expects the Batch that input_fn returns, got {type(input_data).__name__}")
    try:
        matrix = _to_matrix(input_data, model.feature_names)
    except RequestError as error:
        return _reject(error)
    import numpy as np

    features = np.asarray(matrix, dtype=np.float64)
    labels = model.estimator.predict(features)
    result: dict[str, Any] = {
        "model": model.model_id,
        "classes": [_plain(c) for c in model.classes],
        "predictions": [_plain(v) for v in labels.tolist()],
    }
    if hasattr(model.estimator, "predict_proba"):
        proba = model.estimator.predict_proba(features)
        result["probabilities"] = [[float(p) for p in row] for row in proba.tolist()]
    return result


def output_fn(prediction: Any, accept: str | None) -> Any:
    """Serialise the prediction as JSON (the only response type).

    Returns the JSON text; in the container, the worker's response object, so that the response carries the
    ``application/json`` content type (Flask would label a bare string text/html) and errors carry their status.
    """
    if isinstance(prediction, RequestError):
        return _response(prediction.as_json(), prediction)
    try:
        _check_accept(accept)
    except RequestError as error:
        return _response(error.as_json(), error)
    return _response(json.dumps(prediction, sort_keys=True, allow_nan=False), None)


def _response(body: str, error: RequestError | None) -> Any:
    response_class = _container_response_class()
    if response_class is None:
        if error is not None:
            raise error
        return body
    status = 200 if error is None else error.status_code
    return response_class(response=body, status=status, mimetype=JSON_TYPE)


# --------------------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------------------


def _media_type(content_type: str) -> str:
    parts = [p.strip() for p in content_type.split(";")]
    media_type = parts[0].lower()
    charset = "utf-8"
    for param in parts[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"unsupported charset {charset!r}: send UTF-8")
    return media_type


def _body_text(body: Any) -> str:
    if isinstance(body, (bytes, bytearray)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(f"request body is not valid UTF-8 (byte {exc.start})") from None
    elif isinstance(body, str):
        text = body
    else:
        raise RequestError(f"request body has an unexpected type {type(body).__name__}")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise RequestError("request body is empty")
    return text


def _reject_constant(name: str) -> float:
    raise RequestError(f"{name} is not a valid value: every value must be a finite number")


def _parse_json(text: str) -> Batch:
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except RequestError:
        raise
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    if isinstance(doc, dict):
        if set(doc) != {"instances"}:
            raise RequestError(f'a JSON object body must have exactly one key, "instances" (got {sorted(doc)})')
        doc = doc["instances"]
    if not isinstance(doc, list):
        raise RequestError(f'expected {{"instances": [...]}} or a list of rows, got {_json_type(doc)}')
    _check_row_count(len(doc))
    rows: list[Any] = []
    for i, row in enumerate(doc):
        if isinstance(row, list):
            rows.append([_number(v, f"row {i}, column {j}") for j, v in enumerate(row)])
        elif isinstance(row, dict):
            rows.append({str(k): _number(v, f"row {i}, feature {k!r}") for k, v in row.items()})
        else:
            raise RequestError(f"row {i} is {_json_type(row)}: each row is a list of numbers or an object")
    return Batch(rows)


def _parse_csv(text: str) -> Batch:
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise RequestError(f"request body is not valid CSV: {exc}") from None
    lines = [line for line in lines if line and any(cell.strip() for cell in line)]
    header: list[str] | None = None
    if lines and not _looks_numeric(lines[0][0]):
        header = [cell.strip() for cell in lines[0]]
        lines = lines[1:]
    if not lines:
        raise RequestError("CSV body has no data rows")
    _check_row_count(len(lines))
    rows = [[_csv_number(cell, f"row {i}, column {j}") for j, cell in enumerate(line)] for i, line in enumerate(lines)]
    return Batch(rows, header)


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_number(cell: str, where: str) -> float:
    try:
        value = float(cell.strip())
    except ValueError:
        raise RequestError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise RequestError(f"{where}: {cell!r} is not a finite number")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{where}: {_json_type(value)} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise RequestError(f"{where}: {value!r} is not a finite number") from None
    if not math.isfinite(number):
        raise RequestError(f"{where}: {value!r} is not a finite number")
    return number


def _check_row_count(n: int) -> None:
    if n == 0:
        raise RequestError("request has no rows")
    if n > MAX_ROWS:
        raise RequestError(f"request has {n} rows; at most {MAX_ROWS} rows per request")


def _check_accept(accept: str | None) -> None:
    if not accept:
        return
    for item in accept.split(","):
        media_range = item.split(";")[0].strip().lower()
        if media_range in (JSON_TYPE, "application/*", "*/*", ""):
            return
    raise NotAcceptable(f"unsupported Accept {accept!r}: responses are {JSON_TYPE}")


def _to_matrix(batch: Batch, feature_names: list[str]) -> list[list[float]]:
    n = len(feature_names)
    if batch.header is not None and batch.header != feature_names:
        raise RequestError(f"CSV header does not match the model's {n} feature names {feature_names}")
    matrix: list[list[float]] = []
    for i, row in enumerate(batch.rows):
        if isinstance(row, dict):
            missing = [f for f in feature_names if f not in row]
            unknown = sorted(k for k in row if k not in feature_names)
            if missing or unknown:
                raise RequestError(
                    f"row {i}: missing features {missing or 'none'}, unknown features {unknown or 'none'}"
                )
            matrix.append([row[f] for f in feature_names])
        else:
            if len(row) != n:
                raise RequestError(f"row {i} has {len(row)} values; the model takes {n} features")
            matrix.append(list(row))
    return matrix


def _json_type(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """numpy scalars to plain Python values for JSON."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
