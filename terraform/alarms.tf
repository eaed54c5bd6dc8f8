# Per-variant alarms on the release's canary thresholds, for operators watching the endpoint between deploys
# (`smgitops canary` analyses the same metrics itself during the bake window). Alarm names are
# <endpoint>/<variant>/<metric>: endpoint and variant names contain no "/", so the name starts with the endpoint and
# its first "/" follows the environment suffix (-<environment>), which is what each apply role's alarm ARN pattern
# (*-<environment>/*/5xx-rate) is anchored on (bootstrap/roles.tf).

locals {
  variants_by_name = { for v in local.variants : v.name => v }

  alarm_period_seconds      = 60
  alarm_evaluation_periods  = 5
  alarm_datapoints_to_alarm = 3
}

# ---------------------------------------------------------------------------------------------------------------------
# 5XX error rate: Invocation5XXErrors / Invocations above canary.max_error_rate (a fraction)
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "error_rate" {
  for_each = local.variants_by_name

  alarm_name          = "${local.endpoint_name}/${each.key}/5xx-rate"
  alarm_description   = "Share of ${local.endpoint_name}/${each.key} invocations answered with 5XX above ${local.canary.max_error_rate}"
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.canary.max_error_rate
  evaluation_periods  = local.alarm_evaluation_periods
  datapoints_to_alarm = local.alarm_datapoints_to_alarm
  treat_missing_data  = "notBreaching" # no traffic is not an error

  metric_query {
    id          = "error_rate"
    expression  = "IF(invocations > 0, errors / invocations, 0)"
    label       = "5XX error rate"
    return_data = true
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/SageMaker"
      metric_name = "Invocation5XXErrors"
      period      = local.alarm_period_seconds
      stat        = "Sum"
      dimensions = {
        EndpointName = aws_sagemaker_endpoint.this.name
        VariantName  = each.key
      }
    }
  }

  metric_query {
    id = "invocations"

    metric {
      namespace   = "AWS/SageMaker"
      metric_name = "Invocations"
      period      = local.alarm_period_seconds
      stat        = "Sum"
      dimensions = {
        EndpointName = aws_sagemaker_endpoint.this.name
        VariantName  = each.key
      }
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# p99 model latency above canary.max_p99_latency_ms (ModelLatency is reported in microseconds)
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "p99_latency" {
  for_each = local.variants_by_name

  alarm_name          = "${local.endpoint_name}/${each.key}/p99-latency"
  alarm_description   = "p99 ModelLatency of ${local.endpoint_name}/${each.key} above ${local.canary.max_p99_latency_ms} ms"
  namespace           = "AWS/SageMaker"
  metric_name         = "ModelLatency"
  extended_statistic  = "p99"
  period              = local.alarm_period_seconds
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.canary.max_p99_latency_ms * 1000
  evaluation_periods  = local.alarm_evaluation_periods
  datapoints_to_alarm = local.alarm_datapoints_to_alarm
  treat_missing_data  = "notBreaching"

  dimensions = {
    EndpointName = aws_sagemaker_endpoint.this.name
    VariantName  = each.key
  }
}
