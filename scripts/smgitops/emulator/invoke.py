"""sagemaker-runtime ``InvokeEndpoint`` for real: the variant's model artifact runs the way the container runs it.

moto answers invocations with canned bodies. Here a request to ``POST /endpoints/<name>/invocations``:

1. picks a production variant by the endpoint's current weights (``X-Amzn-SageMaker-Target-Variant`` honoured),
   with the extension's seeded generator, as SageMaker's router does;
2. loads that variant's model ``ModelDataUrl`` (``model.tar.gz``) from the emulated S3, extracts it once into a
   cache keyed by its sha256, imports ``code/inference.py`` by path and calls ``model_fn`` once per artifact;
3. calls ``input_fn(body, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction, accept)`` like the
   SageMaker scikit-learn container. An exception with an integer ``status_code`` is the container answering
   that status; any other exception is a 500;
4. answers like SageMaker: the body and ``x-Amzn-Invoked-Production-Variant`` on success; a non-2xx container
   answer is a ``ModelError`` (HTTP 424) carrying ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn``;
5. records per-variant CloudWatch metrics in moto's CloudWatch backend (namespace ``AWS/SageMaker``, dimensions
   ``EndpointName``/``VariantName``): ``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors`` (0 or 1
   per invocation, so Average is a rate, as SageMaker publishes them), ``ModelLatency`` and ``OverheadLatency``
   in microseconds.

Fault injection (admin ``faults``): a variant's ``error_rate`` answers that fraction of its invocations with a
container 500 (the model is not called) and ``latency_ms`` is added to the ModelLatency recorded, without
sleeping, so tests and the demo stay fast.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import io
import json
import logging
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from smgitops.emulator.state import ExtensionState

INVOKE_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
NAMESPACE = "AWS/SageMaker"
CONTAINER_NAME = "primary"
log = logging.getLogger("smgitops.emulator.invoke")

StartResponse = Callable[..., Any]


class InvokeError(Exception):
    """An answer of the SageMaker runtime itself (not of the model): status, error type, message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


@dataclass
class LoadedModel:
    digest: str
    handler: ModuleType
    model: Any


@dataclass
class Outcome:
    status: int  # the container's status
    body: bytes
    content_type: str
    model_latency_us: float


def _region_of(environ: dict[str, Any]) -> str:
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    match = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", auth)
    return match.group(1) if match else "us-east-1"


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


def pick_variant(variants: list[tuple[str, float]], draw: float) -> str | None:
    """The variant whose cumulative weight interval holds ``draw`` (uniform in [0, 1)); None if all weigh 0."""
    total = sum(max(w, 0.0) for _, w in variants)
    if total <= 0:
        return None
    point = draw * total
    cumulative = 0.0
    chosen = None
    for name, weight in variants:
        if weight <= 0:
            continue
        cumulative += weight
        chosen = name
        if point < cumulative:
            return name
    return chosen


class ArtifactCache:
    """Extracted artifacts and their loaded handlers, keyed by the sha256 of ``model.tar.gz``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="smgitops-emulator-models-"))
        atexit.register(shutil.rmtree, self.root, True)
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, tarball: bytes) -> LoadedModel:
        digest = hashlib.sha256(tarball).hexdigest()
        with self._lock:
            loaded = self._loaded.get(digest)
            if loaded is None:
                loaded = self._load(digest, tarball)
                self._loaded[digest] = loaded
                self.loads += 1
            return loaded

    def _load(self, digest: str, tarball: bytes) -> LoadedModel:
        model_dir = self.root / digest
        staging = self.root / f".{digest}.{uuid.uuid4().hex}"
        staging.mkdir()
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        if model_dir.exists():
            shutil.rmtree(staging)
        else:
            staging.rename(model_dir)
        script = model_dir / "code" / "inference.py"
        if not script.is_file():
            raise RuntimeError("model.tar.gz has no code/inference.py")
        module_name = f"smgitops_emulated_inference_{digest[:16]}"
        spec = importlib.util.spec_from_file_location(module_name, script)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot import {script}")
        handler = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = handler  # dataclasses and pickles resolve the module by name
        spec.loader.exec_module(handler)
        for name in ("model_fn", "input_fn", "predict_fn", "output_fn"):
            if not callable(getattr(handler, name, None)):
                raise RuntimeError(f"code/inference.py defines no {name}()")
        return LoadedModel(digest=digest, handler=handler, model=handler.model_fn(str(model_dir)))


def _import_serving_libraries() -> None:
    from smgitops.estimators import ALLOWED_ESTIMATORS

    modules = {"numpy", "joblib", *(dotted.rpartition(".")[0] for dotted in ALLOWED_ESTIMATORS)}
    for module in sorted(modules):
        try:
            importlib.import_module(module)
        except ImportError as exc:  # the first invocation will say what is missing
            log.warning("warming inference: %s", exc)


class Invoker:
    def __init__(self, state: ExtensionState, clock: Callable[[], float] = time.perf_counter) -> None:
        self.state = state
        self.clock = clock
        self.cache = ArtifactCache()
        self._warming: threading.Thread | None = None
        self._warming_lock = threading.Lock()

    def reset(self) -> None:
        """Nothing to forget: the artifact cache is content-addressed, so it can never serve stale models."""

    def warm(self) -> bool:
        """Import, in the background, the libraries a model's ``model_fn`` loads (numpy, joblib, the modules of the
        estimators training may use), as a serving container has them loaded before its first request; otherwise
        the first invocation pays for scikit-learn's import (a second or more). False: already warming or warm."""
        with self._warming_lock:
            if self._warming is not None:
                return False
            from smgitops.estimators import steady_environ_for_numpy

            steady_environ_for_numpy()  # the request threads read the environment while numpy is imported
            self._warming = threading.Thread(target=_import_serving_libraries, daemon=True, name="warm-inference")
        self._warming.start()
        return True

    def maybe_handle(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes] | None:
        match = INVOKE_PATH.match(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return None
        return self.handle(match.group("name"), environ, start_response)

    # -- the request ----------------------------------------------------------------------------------------

    def handle(self, endpoint_name: str, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        from moto.core.models import DEFAULT_ACCOUNT_ID

        began = self.clock()
        account, region = DEFAULT_ACCOUNT_ID, _region_of(environ)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        content_type = str(environ.get("CONTENT_TYPE") or "application/octet-stream")
        accept = environ.get("HTTP_ACCEPT")
        target = environ.get("HTTP_X_AMZN_SAGEMAKER_TARGET_VARIANT")
        request_id = str(uuid.uuid4())
        try:
            variant, model_data_url = self._route(account, region, endpoint_name, target)
        except InvokeError as err:
            return self._runtime_error(start_response, err, request_id)

        fault = self.state.faults.get((endpoint_name, variant))
        with self.state.lock:
            fail = fault is not None and fault.error_rate > 0 and self.state.rng.random() < fault.error_rate
        if fail:
            outcome = Outcome(500, b"Injected fault: the model container failed.", "text/plain", 0.0)
        else:
            outcome = self._run_model(account, model_data_url, body, content_type, accept)
        if fault is not None:
            outcome.model_latency_us += fault.latency_ms * 1000.0
        overhead_us = max((self.clock() - began) * 1e6 - outcome.model_latency_us, 0.0)
        if fault is not None:
            overhead_us = max(overhead_us - fault.latency_ms * 1000.0, 0.0)
        self._record(account, region, endpoint_name, variant, outcome, overhead_us)

        if 200 <= outcome.status < 300:
            start_response(
                _status_line(200),
                [
                    ("Content-Type", outcome.content_type),
                    ("Content-Length", str(len(outcome.body))),
                    ("x-Amzn-Invoked-Production-Variant", variant),
                    ("x-amzn-RequestId", request_id),
                ],
            )
            return [outcome.body]
        return self._model_error(start_response, account, region, endpoint_name, outcome, request_id)

    def _route(self, account: str, region: str, endpoint_name: str, target: str | None) -> tuple[str, str]:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[account][region]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            raise InvokeError(400, "ValidationError", f"Endpoint {endpoint_name} of account {account} not found.")
        if endpoint.endpoint_status not in ("InService", "Updating"):
            raise InvokeError(
                400,
                "ValidationError",
                f"Endpoint {endpoint_name} of account {account} is {endpoint.endpoint_status}, not InService.",
            )
        weights = [(str(v["VariantName"]), float(v.get("CurrentWeight", 0.0))) for v in endpoint.production_variants]
        if target is not None:
            if target not in {name for name, _ in weights}:
                raise InvokeError(
                    400,
                    "ValidationError",
                    f"The variant {target} is not present in endpoint {endpoint_name} of account {account}.",
                )
            variant = target
        else:
            with self.state.lock:
                draw = self.state.rng.random()
            chosen = pick_variant(weights, draw)
            if chosen is None:
                raise InvokeError(
                    400, "ValidationError", f"Endpoint {endpoint_name} has no variant with a weight above 0."
                )
            variant = chosen
        model_name = self.state.variant_models.get((account, region, endpoint_name), {}).get(variant)
        model = backend._models.get(model_name) if model_name else None
        if model is None:
            raise InvokeError(
                400, "ValidationError", f"Model of variant {variant} of endpoint {endpoint_name} no longer exists."
            )
        model_data_url = str((model.primary_container or {}).get("ModelDataUrl", ""))
        return variant, model_data_url

    def _run_model(
        self, account: str, model_data_url: str, body: bytes, content_type: str, accept: str | None
    ) -> Outcome:
        try:
            loaded = self.cache.get(self._fetch(account, model_data_url))
        except Exception as exc:  # the container would fail to start: a 500 for every request
            log.exception("cannot load model artifact %s", model_data_url)
            return Outcome(
                500, f"Failed to load the model artifact {model_data_url}: {exc}".encode(), "text/plain", 0.0
            )
        started = self.clock()
        handler = loaded.handler
        try:
            data = handler.input_fn(body, content_type)
            prediction = handler.predict_fn(data, loaded.model)
            result = handler.output_fn(prediction, accept)
        except Exception as exc:
            latency = (self.clock() - started) * 1e6
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
                message = json.dumps({"error": type(exc).__name__, "message": str(exc)}, sort_keys=True)
                return Outcome(status, message.encode(), "application/json", latency)
            log.exception("inference.py raised")
            return Outcome(500, f"{type(exc).__name__}: {exc}".encode(), "text/plain", latency)
        latency = (self.clock() - started) * 1e6
        response_type = accept if accept and "*" not in accept and "," not in accept else "application/json"
        if isinstance(result, tuple) and len(result) == 2:
            result, response_type = result
        payload = result.encode() if isinstance(result, str) else bytes(result)
        return Outcome(200, payload, str(response_type), latency)

    @staticmethod
    def _fetch(account: str, model_data_url: str) -> bytes:
        from moto.s3.models import s3_backends

        match = re.match(r"^s3://([^/]+)/(.+)$", model_data_url)
        if match is None:
            raise RuntimeError(f"ModelDataUrl {model_data_url!r} is not an s3:// URL")
        key = s3_backends[account]["aws"].get_object(match.group(1), match.group(2))
        if key is None:
            raise RuntimeError(f"{model_data_url} does not exist")
        value: bytes = key.value
        return value

    # -- answers and metrics ---------------------------------------------------------------------------------

    @staticmethod
    def _send_json(
        start_response: StartResponse, status: int, error_type: str, payload: dict[str, Any], request_id: str
    ) -> list[bytes]:
        data = json.dumps(payload).encode()
        start_response(
            _status_line(status),
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                ("x-amzn-ErrorType", error_type),
                ("x-amzn-RequestId", request_id),
            ],
        )
        return [data]

    def _runtime_error(self, start_response: StartResponse, err: InvokeError, request_id: str) -> list[bytes]:
        return self._send_json(start_response, err.status, err.error_type, {"message": err.message}, request_id)

    def _model_error(
        self,
        start_response: StartResponse,
        account: str,
        region: str,
        endpoint_name: str,
        outcome: Outcome,
        request_id: str,
    ) -> list[bytes]:
        kind = "client" if outcome.status < 500 else "server"
        original = outcome.body.decode(errors="replace")
        group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
        payload = {
            "Message": (
                f'Received {kind} error ({outcome.status}) from {CONTAINER_NAME} with message "{original}". '
                f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
                f"group={group} in account {account} for more information."
            ),
            "OriginalStatusCode": outcome.status,
            "OriginalMessage": original,
            "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:{group}",
        }
        return self._send_json(start_response, 424, "ModelError", payload, request_id)

    def _record(
        self, account: str, region: str, endpoint_name: str, variant: str, outcome: Outcome, overhead_us: float
    ) -> None:
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.core.utils import utcnow

        dimensions = [{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": variant}]
        now = utcnow()
        values = [
            ("Invocations", 1.0, "None"),
            ("Invocation4XXErrors", 1.0 if 400 <= outcome.status < 500 else 0.0, "None"),
            ("Invocation5XXErrors", 1.0 if outcome.status >= 500 else 0.0, "None"),
            ("ModelLatency", outcome.model_latency_us, "Microseconds"),
            ("OverheadLatency", overhead_us, "Microseconds"),
        ]
        cloudwatch_backends[account][region].put_metric_data(
            NAMESPACE,
            [
                {"MetricName": name, "Value": value, "Unit": unit, "Dimensions": dimensions, "Timestamp": now}
                for name, value, unit in values
            ],
        )
