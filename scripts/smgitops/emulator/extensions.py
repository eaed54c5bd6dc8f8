"""Every change smgitops makes to moto 5.2.5, in one place.

``install(state)`` applies the patches below to moto's classes, once per process. It is only ever called by the
emulator server process (``smgitops.emulator.server``), never by code that uses ``mock_aws()``, so unit tests
elsewhere see plain moto. Each patch says which AWS behaviour it reproduces; tests/test_emulator*.py check each.

New HTTP routes (admin calls, sagemaker-runtime invocations) are not patches: they live in the WSGI layer
(``smgitops.emulator.app``), in front of moto.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import math
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from smgitops.emulator import policy
from smgitops.emulator.state import ExtensionState, Transition

_request_facts: contextvars.ContextVar[policy.RequestFacts] = contextvars.ContextVar("smgitops_request_facts")
_installed: ExtensionState | None = None

# S3 action names moto passes to the bucket policy, mapped to the IAM action AWS authorises them with.
_S3_ACTION_ALIASES = {"s3:HeadObject": "s3:GetObject"}
_S3_POLICY_ACTIONS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})


@contextmanager
def request_facts(facts: policy.RequestFacts) -> Iterator[None]:
    """Make the facts of the request being served visible to the bucket-policy patch."""
    token = _request_facts.set(facts)
    try:
        yield
    finally:
        _request_facts.reset(token)


def _utcnow() -> dt.datetime:
    from moto.core.utils import utcnow

    value: dt.datetime = utcnow()
    return value


def _wrap(owner: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    original = getattr(owner, name)
    replacement = make(original)
    replacement.__name__ = name
    replacement.__qualname__ = f"{owner.__name__}.{name}"
    replacement.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(owner, name, replacement)


# ---------------------------------------------------------------------------------------------------------------
# SageMaker: endpoint variants and transitions
# ---------------------------------------------------------------------------------------------------------------


def endpoint_variants(config_variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DescribeEndpoint's ``ProductionVariants`` for a configuration's variants.

    AWS reports ``CurrentWeight``/``DesiredWeight`` for every variant, 0 included, and defaults the weight to 1.0;
    moto drops a zero weight (a falsy test), which would hide a drained variant after a promotion.
    """
    variants = []
    for variant in config_variants:
        weight = float(variant.get("InitialVariantWeight", 1.0))
        count = int(variant.get("InitialInstanceCount", 1))
        variants.append(
            {
                "VariantName": variant["VariantName"],
                "CurrentWeight": weight,
                "DesiredWeight": weight,
                "CurrentInstanceCount": count,
                "DesiredInstanceCount": count,
            }
        )
    return variants


def _endpoint_arn(backend: Any, name: str) -> str:
    from moto.sagemaker.models import FakeEndpoint

    arn: str = FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)
    return arn


def _config_arn(backend: Any, name: str) -> str:
    from moto.sagemaker.models import FakeEndpointConfig

    arn: str = FakeEndpointConfig.arn_formatter(name, backend.account_id, backend.region_name)
    return arn


def _schedule(state: ExtensionState, backend: Any, endpoint: str, kind: str, **extra: Any) -> None:
    with state.lock:
        key = (backend.account_id, backend.region_name, endpoint)
        state.transitions[key] = Transition(
            account_id=backend.account_id,
            region=backend.region_name,
            endpoint=endpoint,
            due=state.now() + state.transition_delay,
            kind=kind,
            started=_utcnow(),
            **extra,
        )


def _serve(state: ExtensionState, backend: Any, endpoint: str, config_variants: list[dict[str, Any]]) -> None:
    """Remember which model each variant of the endpoint runs (invocations need it even if the config goes)."""
    with state.lock:
        state.variant_models[(backend.account_id, backend.region_name, endpoint)] = {
            str(v["VariantName"]): str(v["ModelName"]) for v in config_variants
        }


def update_endpoint(state: ExtensionState, backend: Any, endpoint_name: str, config_name: str) -> str:
    """UpdateEndpoint: ``Updating`` now, the new configuration serving once ``InService``.

    AWS validates that the endpoint and the configuration exist and that the endpoint is not already being
    created or updated ("Cannot update in-progress endpoint"). Until the update completes the endpoint keeps
    serving its old configuration. An update that fails returns the endpoint to ``InService`` on the old
    configuration with ``FailureReason`` set (DescribeEndpoint documents FailureReason for "the status is InService
    but update operation fails"); ``UpdateRollbackFailed`` is a different case (rolling deployments) not modelled.
    """
    from moto.sagemaker.exceptions import ValidationError

    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        raise ValidationError(message=f'Could not find endpoint "{_endpoint_arn(backend, endpoint_name)}".')
    if config_name not in backend.endpoint_configs:
        raise ValidationError(message=f'Could not find endpoint configuration "{_config_arn(backend, config_name)}".')
    if endpoint.endpoint_status != "InService":
        raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
    with state.lock:
        failure = state.fail_next_update.pop(endpoint_name, None)
    endpoint.endpoint_status = "Updating"
    endpoint.last_modified_time = _utcnow()
    _schedule(state, backend, endpoint_name, "update", new_config=config_name, failure_reason=failure)
    arn: str = endpoint.arn
    return arn


def settle(state: ExtensionState) -> None:
    """Apply every endpoint transition that is due (called before each request is handled)."""
    from moto.sagemaker.models import sagemaker_backends

    for t in state.due_transitions():
        backend = sagemaker_backends[t.account_id][t.region]
        endpoint = backend.endpoints.get(t.endpoint)
        if endpoint is None:  # deleted meanwhile
            continue
        if t.kind == "update":
            new_config = t.new_config or ""
            config = backend.endpoint_configs.get(new_config)
            reason = t.failure_reason
            if config is None:
                reason = reason or f'Endpoint configuration "{new_config}" was deleted during the update.'
            if reason is None and config is not None:
                _serve(state, backend, t.endpoint, config.production_variants)
                endpoint.endpoint_config_name = new_config
                endpoint.production_variants = endpoint_variants(config.production_variants)
                endpoint.data_capture_config = config.data_capture_config
                endpoint.failure_reason = None
            else:
                endpoint.failure_reason = reason  # type: ignore[assignment]  # moto declares it None-only
        endpoint.endpoint_status = "InService"
        endpoint.last_modified_time = _utcnow()


def _patch_sagemaker(state: ExtensionState) -> None:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, Model, SageMakerModelBackend, sagemaker_backends
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemaker.utils import arn_formatter

    # AWS refuses to create a model, endpoint configuration or endpoint whose name exists ("Cannot create already
    # existing ..."); moto silently replaces the old one, which would hide a name collision between releases.
    def refuse_duplicate_model(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_model(self: Any, model_name: str, *args: Any, **kwargs: Any) -> Any:
            if model_name in self._models:
                arn = arn_formatter("model", model_name, self.account_id, self.region_name)
                raise ValidationError(message=f'Cannot create already existing model "{arn}".')
            return original(self, model_name, *args, **kwargs)

        return create_model

    def refuse_duplicate_config(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_endpoint_config(self: Any, endpoint_config_name: str, *args: Any, **kwargs: Any) -> Any:
            if endpoint_config_name in self.endpoint_configs:
                arn = _config_arn(self, endpoint_config_name)
                raise ValidationError(message=f'Cannot create already existing endpoint configuration "{arn}".')
            return original(self, endpoint_config_name, *args, **kwargs)

        return create_endpoint_config

    # CreateEndpoint: AWS answers at once with the endpoint ``Creating`` and makes it ``InService`` later; moto
    # makes it ``InService`` immediately. Weights of 0 are reported (see endpoint_variants). Replaces moto's body
    # (which reads the configuration back through its DescribeEndpointConfig echo, fixed below).
    def create_endpoint_creating(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
            if endpoint_name in self.endpoints:
                arn = _endpoint_arn(self, endpoint_name)
                raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
            if endpoint_config_name not in self.endpoint_configs:
                arn = _config_arn(self, endpoint_config_name)
                raise ValidationError(message=f'Could not find endpoint configuration "{arn}".')
            config = self.endpoint_configs[endpoint_config_name]
            endpoint = FakeEndpoint(  # type: ignore[abstract]  # moto instantiates it the same way
                account_id=self.account_id,
                region_name=self.region_name,
                endpoint_name=endpoint_name,
                endpoint_config_name=endpoint_config_name,
                production_variants=[],
                data_capture_config=config.data_capture_config,
                tags=tags,
            )
            endpoint.production_variants = endpoint_variants(config.production_variants)
            endpoint.endpoint_status = "Creating"
            self.endpoints[endpoint_name] = endpoint
            _serve(state, self, endpoint_name, config.production_variants)
            _schedule(state, self, endpoint_name, "create")
            return endpoint

        return create_endpoint

    # DeleteEndpoint works in any status on AWS; a pending transition of the deleted endpoint is dropped.
    def delete_endpoint_any_status(original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_endpoint(self: Any, endpoint_name: str) -> None:
            original(self, endpoint_name)
            with state.lock:
                state.transitions.pop((self.account_id, self.region_name, endpoint_name), None)
                state.variant_models.pop((self.account_id, self.region_name, endpoint_name), None)

        return delete_endpoint

    # UpdateEndpointWeightsAndCapacities: AWS requires an InService endpoint and passes through ``Updating``.
    def weights_updating(original: Callable[..., Any]) -> Callable[..., Any]:
        def update_endpoint_weights_and_capacities(
            self: Any, endpoint_name: str, desired_weights_and_capacities: Any
        ) -> str:
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is not None and endpoint.endpoint_status != "InService":
                raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
            arn: str = original(self, endpoint_name, desired_weights_and_capacities)
            endpoint = self.endpoints[endpoint_name]
            for variant in endpoint.production_variants:
                for key in ("CurrentWeight", "DesiredWeight"):
                    if variant.get(key) is not None:
                        variant[key] = float(variant[key])
            endpoint.endpoint_status = "Updating"
            endpoint.last_modified_time = _utcnow()
            _schedule(state, self, endpoint_name, "weights")
            return arn

        return update_endpoint_weights_and_capacities

    _wrap(SageMakerModelBackend, "create_model", refuse_duplicate_model)
    _wrap(SageMakerModelBackend, "create_endpoint_config", refuse_duplicate_config)
    _wrap(SageMakerModelBackend, "create_endpoint", create_endpoint_creating)
    _wrap(SageMakerModelBackend, "delete_endpoint", delete_endpoint_any_status)
    _wrap(SageMakerModelBackend, "update_endpoint_weights_and_capacities", weights_updating)

    # DescribeModel echoes what CreateModel was given: moto drops EnableNetworkIsolation (always false) and echoes
    # an empty VpcConfig when none was set, so Terraform plans a forced replacement after every apply.
    def create_model_keeps_isolation(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_model(self: Any) -> Any:
            result = original(self)
            model = self.sagemaker_backend.describe_model(self._get_param("ModelName"))
            model.enable_network_isolation = bool(self._get_param("EnableNetworkIsolation", False))
            return result

        return create_model

    def model_response_object(self: Any) -> dict[str, Any]:
        response: dict[str, Any] = dict(_model_response_original.fget(self))  # type: ignore[misc]
        if not response.get("VpcConfig"):
            response.pop("VpcConfig", None)
        if not response.get("Containers"):
            response.pop("Containers", None)
        response.pop("Tags", None)  # DescribeModel has no Tags; ListTags does
        return response

    _model_response_original: property = Model.__dict__["response_object"]
    setattr(Model, "response_object", property(model_response_object))  # noqa: B010

    # DescribeEndpointConfig: AWS omits DataCaptureConfig when none was set (moto echoes ``{}``, which provider
    # 3.39 reads as a capture block with enable_capture = false and plans a forced replacement), has no Tags,
    # and reports the default InitialVariantWeight of 1.0 for variants created without one.
    def endpoint_config_response_object(self: Any) -> dict[str, Any]:
        response: dict[str, Any] = dict(_config_response_original.fget(self))  # type: ignore[misc]
        for key in ("DataCaptureConfig", "AsyncInferenceConfig"):
            if not response.get(key):
                response.pop(key, None)
        response.pop("Tags", None)
        response.pop("Arn", None)
        response["ProductionVariants"] = [
            {"InitialVariantWeight": 1.0, **variant} for variant in response.get("ProductionVariants", [])
        ]
        return response

    _config_response_original: property = FakeEndpointConfig.__dict__["response_object"]
    setattr(FakeEndpointConfig, "response_object", property(endpoint_config_response_object))  # noqa: B010

    # DescribeEndpoint: DataCaptureConfig has the endpoint's shape (EnableCapture, CaptureStatus,
    # CurrentSamplingPercentage, DestinationS3Uri, KmsKeyId), not the configuration's; no Tags.
    def endpoint_response_object(self: Any) -> dict[str, Any]:
        response: dict[str, Any] = dict(_endpoint_response_original.fget(self))  # type: ignore[misc]
        response.pop("Tags", None)
        capture = self.data_capture_config or {}
        response.pop("DataCaptureConfig", None)
        if capture:
            enabled = bool(capture.get("EnableCapture", True))
            shaped = {
                "EnableCapture": enabled,
                "CaptureStatus": "Started" if enabled else "Stopped",
                "CurrentSamplingPercentage": int(capture.get("InitialSamplingPercentage", 0)),
                "DestinationS3Uri": capture.get("DestinationS3Uri", ""),
            }
            if capture.get("KmsKeyId"):
                shaped["KmsKeyId"] = capture["KmsKeyId"]
            response["DataCaptureConfig"] = shaped
        # While UpdateEndpoint is in progress AWS also reports the deployment underway.
        with state.lock:
            pending = state.transitions.get((self.arn.split(":")[4], self.arn.split(":")[3], self.endpoint_name))
        if pending is not None and pending.kind == "update":
            backend = sagemaker_backends[pending.account_id][pending.region]
            config = backend.endpoint_configs.get(pending.new_config or "")
            variants = config.production_variants if config is not None else []
            response["PendingDeploymentSummary"] = {
                "EndpointConfigName": pending.new_config,
                "StartTime": pending.started,
                "ProductionVariants": [
                    {
                        "VariantName": v["VariantName"],
                        "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
                        "DesiredInstanceCount": int(v.get("InitialInstanceCount", 1)),
                        "InstanceType": v.get("InstanceType"),
                    }
                    for v in variants
                ],
            }
        return response

    _endpoint_response_original: property = FakeEndpoint.__dict__["response_object"]
    setattr(FakeEndpoint, "response_object", property(endpoint_response_object))  # noqa: B010
    _wrap(SageMakerResponse, "create_model", create_model_keeps_isolation)

    # UpdateEndpoint is not implemented by moto 5.2.5: added as a response action (dispatch finds it by name).
    def update_endpoint_action(self: Any) -> Any:
        from moto.core.responses import ActionResult

        arn = update_endpoint(
            state, self.sagemaker_backend, self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        )
        return ActionResult({"EndpointArn": arn})

    update_endpoint_action.__name__ = "update_endpoint"
    setattr(SageMakerResponse, "update_endpoint", update_endpoint_action)  # noqa: B010


# ---------------------------------------------------------------------------------------------------------------
# S3: bucket policies with conditions
# ---------------------------------------------------------------------------------------------------------------


def _patch_s3() -> None:
    from moto.iam.access_control import PermissionResult
    from moto.s3.exceptions import BucketAccessDeniedError
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    results = {
        policy.Decision.ALLOWED: PermissionResult.PERMITTED,
        policy.Decision.DENIED: PermissionResult.DENIED,
        policy.Decision.NEUTRAL: PermissionResult.NEUTRAL,
    }

    # S3 evaluates a bucket policy's Condition blocks against the request (aws:SecureTransport, s3:if-none-match,
    # ...); moto ignores them, so a conditional Deny denies every request. See smgitops.emulator.policy.
    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        facts = _request_facts.get(policy.RequestFacts(secure_transport=False))
        decision = policy.evaluate(self.policy, _S3_ACTION_ALIASES.get(action, action), resource, facts)
        return results[decision]

    setattr(FakeBucket, "get_permission", get_permission)  # noqa: B010

    # S3 applies a bucket policy to bucket-level requests too (ListBucket, GetBucketVersioning, ...); moto only
    # consults it for object requests. The bucket owner can always read, replace or delete the policy itself (S3
    # exempts the owning account's root from being locked out), so those three actions are not evaluated.
    def authorize_bucket_level(original: Callable[..., Any]) -> Callable[..., Any]:
        def _authenticate_and_authorize_s3_action(
            self: Any, bucket_name: str | None = None, key_name: str | None = None
        ) -> None:
            original(self, bucket_name=bucket_name, key_name=key_name)
            if not bucket_name or key_name is not None:
                return
            action = f"s3:{self.data.get('Action', '')}"
            if action in _S3_POLICY_ACTIONS:
                return
            bucket = self.backend.buckets.get(bucket_name)
            if bucket is None or bucket.policy is None:
                return
            facts = _request_facts.get(policy.RequestFacts(secure_transport=False))
            if policy.evaluate(bucket.policy, action, f"arn:aws:s3:::{bucket_name}", facts) is policy.Decision.DENIED:
                raise BucketAccessDeniedError(bucket_name)

        return _authenticate_and_authorize_s3_action

    _wrap(S3Response, "_authenticate_and_authorize_s3_action", authorize_bucket_level)


# ---------------------------------------------------------------------------------------------------------------
# CloudWatch: percentile statistics
# ---------------------------------------------------------------------------------------------------------------

_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?|100)$")


def percentile(values: list[float], stat: str) -> float | None:
    """CloudWatch's ``pNN`` statistic over raw samples (nearest rank); None without samples."""
    match = _PERCENTILE.match(stat)
    if match is None:
        raise ValueError(f"not a percentile statistic: {stat!r}")
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(float(match.group(1)) / 100.0 * len(ordered))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def _patch_cloudwatch() -> None:
    from moto.cloudwatch.exceptions import InvalidParameterValue
    from moto.cloudwatch.models import CloudWatchBackend, Statistics
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    # CloudWatch computes percentile statistics (p99 etc.) in GetMetricData ("Stat": "p99") and
    # GetMetricStatistics (ExtendedStatistics); moto returns nothing for them. The canary analysis and the p99
    # latency alarms read ModelLatency p99.
    def stat_with_percentiles(original: Callable[..., Any]) -> Callable[..., Any]:
        def get_statistics_for_type(self: Any, stat: str) -> Any:
            if _PERCENTILE.match(stat):
                return percentile(self.metric_single_values_list, stat)
            return original(self, stat)

        return get_statistics_for_type

    def extended_statistics(original: Callable[..., Any]) -> Callable[..., Any]:
        def get_metric_statistics(self: Any) -> Any:
            extended = self._get_param("ExtendedStatistics", []) or []
            if not extended:
                return original(self)
            for stat in extended:
                if not _PERCENTILE.match(stat):
                    raise InvalidParameterValue(f"The value {stat} for parameter ExtendedStatistics is not supported.")
            metric_name = self._get_param("MetricName")
            datapoints = self.cloudwatch_backend.get_metric_statistics(
                self._get_param("Namespace"),
                metric_name,
                self._get_param("StartTime"),
                self._get_param("EndTime"),
                self._get_int_param("Period"),
                self._get_param("Statistics", []) or [],
                unit=self._get_param("Unit"),
                dimensions=self._get_param("Dimensions", []),
            )
            for datapoint in datapoints:
                values = datapoint.metric_single_values_list
                datapoint.extended_statistics = {stat: percentile(values, stat) for stat in extended}
            return ActionResult({"Label": metric_name, "Datapoints": datapoints})

        return get_metric_statistics

    _wrap(Statistics, "get_statistics_for_type", stat_with_percentiles)
    _wrap(CloudWatchResponse, "get_metric_statistics", extended_statistics)
    _wrap(CloudWatchBackend, "get_all_metrics", metrics_for_the_query)
    _wrap(CloudWatchBackend, "get_metric_data", metric_data_query_by_query)


# The datapoints a GetMetricData MetricStat query can use (moto's own conditions), while that query is answered.
_query_metrics = threading.local()


def metric_stat_filter(query: dict[str, Any]) -> Callable[[Any], bool]:
    """Whether a datapoint can count for the MetricStat ``query`` by moto 5.2.5's own conditions: its name, and with
    dimensions its dimensions (compared exactly as moto compares them), else its namespace."""
    from moto.cloudwatch.models import Dimension

    metric = query["MetricStat"]["Metric"]
    name, namespace = metric["MetricName"], metric["Namespace"]
    dimensions = sorted(Dimension(name=d["Name"], value=d["Value"]) for d in metric.get("Dimensions", []))
    if dimensions:
        return lambda md: md.name == name and sorted(md.dimensions) == dimensions
    return lambda md: md.name == name and md.namespace == namespace


def metrics_for_the_query(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_all_metrics(self: Any) -> Any:
        data = original(self)
        keep = getattr(_query_metrics, "keep", None)
        return data if keep is None else [md for md in data if keep(md)]

    return get_all_metrics


def metric_data_query_by_query(original: Callable[..., Any]) -> Callable[..., Any]:
    """GetMetricData answered one MetricStat query at a time, each over the datapoints it can use.

    moto compares every datapoint of the window with every query in every period (a sort of its dimensions each
    time): with the canary's thousands of datapoints, nine queries and ten periods a call takes half a second. A
    request of MetricStat queries only is answered as moto answers each of its queries alone (their results do not
    depend on each other), with moto seeing only the datapoints :func:`metric_stat_filter` keeps, which it would
    have kept anyway: the same answer. A request with an expression (which reads other queries' results) goes to
    moto as it is."""

    def get_metric_data(self: Any, queries: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        if not queries or any("MetricStat" not in q or "Expression" in q for q in queries):
            return original(self, queries, *args, **kwargs)
        results: list[Any] = []
        for query in queries:
            _query_metrics.keep = metric_stat_filter(query)
            try:
                results += original(self, [query], *args, **kwargs)
            finally:
                _query_metrics.keep = None
        return results

    return get_metric_data


def install(state: ExtensionState) -> ExtensionState:
    """Apply the patches once per process; returns the state they are bound to."""
    global _installed
    if _installed is not None:
        return _installed
    _patch_sagemaker(state)
    _patch_s3()
    _patch_cloudwatch()
    _installed = state
    return state
