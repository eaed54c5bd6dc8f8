"""Real Terraform (provider 3.39.0) against the emulator: TLS, the S3 backend behind a TLS-only policy, the
SageMaker lifecycle through UpdateEndpoint, and plans that are empty after each apply (with the attributes the
project's roots set: network isolation, container environment, tags and default tags, KMS, data capture, and
per-variant alarms on p99 latency and 5XX rate)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from fixtures_emulator import start_emulator
from smgitops import paths
from smgitops.emulator.server import Emulator

pytestmark = [
    pytest.mark.terraform,
]

STATE_BUCKET = "smgitops-emulator-tfstate"

MAIN_TF = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "3.39.0" }
  }
  backend "s3" {}
}

variable "config_name" { type = string }
variable "emulator_url" { type = string }

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_get_ec2_platforms      = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  s3_force_path_style         = true
  endpoints {
    cloudwatch = var.emulator_url
    sagemaker  = var.emulator_url
    sts        = var.emulator_url
  }
  default_tags {
    tags = { managed-by = "smgitops", release = "emulator-check" }
  }
}

locals {
  kms_key = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  variant = { EndpointName = "smgitops-emulator-check", VariantName = "blue" }
}

resource "aws_cloudwatch_metric_alarm" "p99" {
  alarm_name          = "smgitops-emulator-check-blue-p99"
  namespace           = "AWS/SageMaker"
  metric_name         = "ModelLatency"
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  threshold           = 500000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  dimensions          = local.variant
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "smgitops-emulator-check-blue-5xx"
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 5
  threshold           = 0.05
  treat_missing_data  = "notBreaching"
  metric_query {
    id          = "rate"
    expression  = "errors / MAX([errors, invocations])"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/SageMaker"
      metric_name = "Invocation5XXErrors"
      period      = 60
      stat        = "Sum"
      dimensions  = local.variant
    }
  }
  metric_query {
    id = "invocations"
    metric {
      namespace   = "AWS/SageMaker"
      metric_name = "Invocations"
      period      = 60
      stat        = "Sum"
      dimensions  = local.variant
    }
  }
}

resource "aws_sagemaker_model" "blue" {
  name                     = "blue-0123456789ab"
  execution_role_arn       = "arn:aws:iam::123456789012:role/smgitops-sagemaker-execution"
  enable_network_isolation = true
  primary_container {
    image          = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    model_data_url = "s3://smgitops-artifacts/models/blue/sha256=0123/model.tar.gz"
    environment = {
      SAGEMAKER_PROGRAM = "inference.py"
      SAGEMAKER_REGION  = "us-east-1"
    }
  }
  tags = { model-id = "blue", model-digest = "0123" }
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  name        = var.config_name
  kms_key_arn = local.kms_key
  data_capture_config {
    enable_capture              = true
    initial_sampling_percentage = 20
    destination_s3_uri          = "s3://smgitops-artifacts/data-capture"
    kms_key_id                  = local.kms_key
    capture_options {
      capture_mode = "Input"
    }
    capture_options {
      capture_mode = "Output"
    }
    capture_content_type_header {
      csv_content_types  = ["text/csv"]
      json_content_types = ["application/json"]
    }
  }
  production_variants {
    variant_name           = "blue"
    model_name             = aws_sagemaker_model.blue.name
    initial_instance_count = 1
    instance_type          = "ml.t2.medium"
    initial_variant_weight = 1
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_sagemaker_endpoint" "this" {
  name                 = "smgitops-emulator-check"
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name
  tags                 = { endpoint = "smgitops-emulator-check" }
}
"""


@pytest.fixture(scope="module")
def tf_emulator() -> Iterator[Emulator]:
    with start_emulator() as server:
        yield server


def _tls_only(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


class Tf:
    def __init__(self, workdir: Path, emulator: Emulator) -> None:
        self.workdir, self.emulator = workdir, emulator
        # The project's CLI config minus the shared plugin cache (concurrent runs would share one binary).
        rc = workdir / "terraformrc"
        lines = paths.terraform_cli_config().read_text(encoding="utf-8").splitlines()
        rc.write_text("\n".join(line for line in lines if "plugin_cache_dir" not in line) + "\n", encoding="utf-8")
        self.env = {**os.environ, **emulator.env(), "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1"}

    def __call__(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["terraform", *args, "-no-color"], cwd=self.workdir, env=self.env, capture_output=True, text=True
        )
        assert proc.returncode in ok, f"terraform {args[0]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def apply(self, config_name: str) -> None:
        self("apply", "-auto-approve", "-input=false", *self.vars(config_name))

    def plan_is_empty(self, config_name: str) -> bool:
        return self("plan", "-detailed-exitcode", "-input=false", *self.vars(config_name), ok=(0, 2)).returncode == 0

    def vars(self, config_name: str) -> list[str]:
        return [f"-var=config_name={config_name}", f"-var=emulator_url={self.emulator.url}"]


def test_terraform_over_tls_with_state_behind_tls_only_policy(tf_emulator: Emulator, tmp_path: Path) -> None:
    """Terraform trusts the emulator through SSL_CERT_FILE; its S3 backend (with use_lockfile) works on a state
    bucket whose TLS-only policy is evaluated, not weakened; an endpoint change goes through UpdateEndpoint and
    lands on the new configuration; a failed update leaves the old configuration serving with FailureReason set
    and Terraform's next plan shows the change still to do. The plan after every successful apply is empty."""
    session = boto3.session.Session(region_name="us-east-1")
    verify = str(tf_emulator.ca_bundle)
    s3: Any = session.client("s3", endpoint_url=tf_emulator.url, verify=verify)  # type: ignore[call-overload]
    sm: Any = session.client("sagemaker", endpoint_url=tf_emulator.url, verify=verify)  # type: ignore[call-overload]
    s3.create_bucket(Bucket=STATE_BUCKET)
    s3.put_bucket_policy(Bucket=STATE_BUCKET, Policy=_tls_only(STATE_BUCKET))

    (tmp_path / "main.tf").write_text(MAIN_TF, encoding="utf-8")
    tf = Tf(tmp_path, tf_emulator)
    tf(
        "init",
        "-input=false",
        f"-backend-config=bucket={STATE_BUCKET}",
        "-backend-config=key=emulator-check/terraform.tfstate",
        "-backend-config=region=us-east-1",
        f'-backend-config=endpoints={{ s3 = "{tf_emulator.url}" }}',
        "-backend-config=use_path_style=true",
        "-backend-config=use_lockfile=true",
        "-backend-config=skip_credentials_validation=true",
        "-backend-config=skip_requesting_account_id=true",
    )

    tf.apply("check-1")
    assert s3.get_object(Bucket=STATE_BUCKET, Key="emulator-check/terraform.tfstate")["Body"].read()
    assert tf.plan_is_empty("check-1")
    tags = sm.list_tags(ResourceArn=sm.describe_model(ModelName="blue-0123456789ab")["ModelArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["model-digest"] == "0123"
    assert sm.describe_endpoint(EndpointName="smgitops-emulator-check")["EndpointConfigName"] == "check-1"

    tf.apply("check-2")
    live = sm.describe_endpoint(EndpointName="smgitops-emulator-check")
    assert (live["EndpointStatus"], live["EndpointConfigName"]) == ("InService", "check-2")
    assert tf.plan_is_empty("check-2")
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == ["check-2"]

    tf_emulator.admin.fail_next_update("smgitops-emulator-check", "Model container failed the ping health check.")
    tf.apply("check-3")
    failed = sm.describe_endpoint(EndpointName="smgitops-emulator-check")
    assert (failed["EndpointStatus"], failed["EndpointConfigName"]) == ("InService", "check-2")
    assert failed["FailureReason"] == "Model container failed the ping health check."
    assert not tf.plan_is_empty("check-3")
