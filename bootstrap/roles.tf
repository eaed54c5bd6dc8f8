# IAM roles. Each role gets one inline policy that names exactly the resources it touches; SageMaker changes are
# further limited by tags (managed-by = smgitops, release = <environment>), so a role cannot touch endpoints it
# does not manage, and the dev apply role cannot touch prod.
#
#   execution   assumed by SageMaker for the endpoints: read model archives, write data capture, logs, metrics.
#   plan        pull-request workflow: publish artifacts (write-once), terraform plan (read + the state locks).
#   apply-<env> deploy workflow in GitHub environment <env>: terraform apply of terraform/ for <env>, verify,
#               smoke inference, canary metrics.
#   teardown    scheduled workflow: list endpoints and delete the managed ones, nothing else.
#   drift       scheduled workflow (`smgitops verify`): describe endpoints, their configurations and models; read only.

# ---------------------------------------------------------------------------------------------------------------------
# Policy fragments shared by several roles
# ---------------------------------------------------------------------------------------------------------------------

locals {
  sagemaker_model_arns    = "${local.sagemaker_arn_prefix}:model/*"
  sagemaker_config_arns   = "${local.sagemaker_arn_prefix}:endpoint-config/*"
  sagemaker_endpoint_arns = "${local.sagemaker_arn_prefix}:endpoint/*"
  alarm_arns              = "arn:${local.partition}:cloudwatch:${var.region}:${local.account_id}:alarm:*"

  sagemaker_read_actions = [
    "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DescribeModel",
    "sagemaker:ListTags",
  ]
  # Actions without resource-level permissions (the Service Authorization Reference lists no resource type).
  account_wide_read_actions = [
    "cloudwatch:GetMetricData",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:ListMetrics",
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListEndpoints",
    "sagemaker:ListModels",
  ]
  kms_data_actions = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
  ]
}

# ---------------------------------------------------------------------------------------------------------------------
# SageMaker execution role
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-sagemaker-execution"
  description        = "Assumed by SageMaker to serve smgitops endpoints"
  assume_role_policy = data.aws_iam_policy_document.execution_trust.json
}

data "aws_iam_policy_document" "execution_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }

    # Confused-deputy guard: only SageMaker acting for this account.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "serve-models"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "ReadModelArchives"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.models_prefix}/*"]
  }

  statement {
    sid       = "WriteDataCapture"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.data_capture_prefix}/*"]
  }

  statement {
    sid       = "LocateBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [aws_s3_bucket.artifacts.arn]
  }

  statement {
    sid       = "UseTheKey"
    actions   = local.kms_data_actions
    resources = [aws_kms_key.this.arn]
  }

  statement {
    sid = "PullTheScikitLearnImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = ["arn:${local.partition}:ecr:${var.region}:683313688378:repository/sagemaker-scikit-learn"]
  }

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"] # no resource-level permissions
    resources = ["*"]
  }

  statement {
    sid = "EndpointLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
    ]
    resources = [
      "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/*",
      "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/*:log-stream:*",
    ]
  }

  statement {
    sid       = "EndpointMetrics"
    actions   = ["cloudwatch:PutMetricData"] # no resource-level permissions; limited to SageMaker's namespaces
    resources = ["*"]

    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*", "AWS/SageMaker"]
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Plan role (pull requests)
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_iam_role" "plan" {
  name                 = "${var.name_prefix}-github-plan"
  description          = "GitHub Actions, pull requests of ${var.github_repository}: publish artifacts and terraform plan"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["plan"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "plan" {
  name   = "plan"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan.json
}

data "aws_iam_policy_document" "plan" {
  statement {
    sid       = "ReadEveryState"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.state_key_prefix}/*"]
  }

  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }

  # terraform plan takes the state lock: the native lock object and the DynamoDB item. It never writes state.
  statement {
    sid       = "TakeStateLockObject"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.state_key_prefix}/*.tflock"]
  }

  statement {
    sid       = "TakeStateLockItem"
    actions   = ["dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.lock.arn]
  }

  statement {
    sid       = "UseTheKey"
    actions   = local.kms_data_actions
    resources = [aws_kms_key.this.arn]
  }

  # Publishing is safe from a pull request: keys are content-addressed and the bucket policy refuses overwrites
  # and deletions.
  statement {
    sid       = "PublishArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.models_prefix}/*"]
  }

  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.models_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadSageMaker"
    actions   = local.sagemaker_read_actions
    resources = [local.sagemaker_model_arns, local.sagemaker_config_arns, local.sagemaker_endpoint_arns]
  }

  statement {
    sid       = "ReadAlarms"
    actions   = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
    resources = [local.alarm_arns]
  }

  statement {
    sid       = "AccountWideReads"
    actions   = local.account_wide_read_actions
    resources = ["*"]
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Apply roles (one per GitHub environment)
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_iam_role" "apply" {
  for_each = toset(var.environments)

  name                 = "${var.name_prefix}-github-apply-${each.key}"
  description          = "GitHub Actions, environment ${each.key} of ${var.github_repository}: apply and verify"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["apply-${each.key}"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "apply" {
  for_each = toset(var.environments)

  name   = "apply-${each.key}"
  role   = aws_iam_role.apply[each.key].id
  policy = data.aws_iam_policy_document.apply[each.key].json
}

data "aws_iam_policy_document" "apply" {
  for_each = toset(var.environments)

  statement {
    sid       = "ReadWriteThisEnvironmentsState"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.state_key_prefix}/${each.key}.tfstate"]
  }

  statement {
    sid       = "TakeStateLockObject"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.state_key_prefix}/${each.key}.tfstate.tflock"]
  }

  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }

  statement {
    sid       = "TakeStateLockItem"
    actions   = ["dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.lock.arn]
  }

  statement {
    sid       = "UseTheKey"
    actions   = local.kms_data_actions
    resources = [aws_kms_key.this.arn]
  }

  # SageMaker encrypts the endpoint's storage volumes with the key through a grant made on the caller's behalf.
  statement {
    sid       = "LetSageMakerUseTheKey"
    actions   = ["kms:CreateGrant"]
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }

  statement {
    sid       = "PublishArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.models_prefix}/*"]
  }

  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.models_prefix}/*"]
    }
  }

  statement {
    sid       = "PassTheExecutionRoleToSageMaker"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }

  # New SageMaker resources must be created with this environment's tags (Terraform sends them with Create*)...
  statement {
    sid       = "CreateTaggedSageMakerResources"
    actions   = ["sagemaker:AddTags", "sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig", "sagemaker:CreateModel"]
    resources = [local.sagemaker_model_arns, local.sagemaker_config_arns, local.sagemaker_endpoint_arns]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["smgitops"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/release"
      values   = [each.key]
    }
  }

  # ...and existing ones may only be changed or deleted when they carry them.
  statement {
    sid = "ChangeThisEnvironmentsSageMakerResources"
    actions = [
      "sagemaker:AddTags",
      "sagemaker:DeleteEndpoint",
      "sagemaker:DeleteEndpointConfig",
      "sagemaker:DeleteModel",
      "sagemaker:DeleteTags",
      "sagemaker:InvokeEndpoint",
      "sagemaker:UpdateEndpoint",
      "sagemaker:UpdateEndpointWeightsAndCapacities",
    ]
    resources = [local.sagemaker_model_arns, local.sagemaker_config_arns, local.sagemaker_endpoint_arns]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["smgitops"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/release"
      values   = [each.key]
    }
  }

  statement {
    sid       = "ReadSageMaker"
    actions   = local.sagemaker_read_actions
    resources = [local.sagemaker_model_arns, local.sagemaker_config_arns, local.sagemaker_endpoint_arns]
  }

  statement {
    sid = "ManageAlarms"
    actions = [
      "cloudwatch:DeleteAlarms",
      "cloudwatch:DescribeAlarms",
      "cloudwatch:ListTagsForResource",
      "cloudwatch:PutMetricAlarm",
      "cloudwatch:TagResource",
      "cloudwatch:UntagResource",
    ]
    resources = [local.alarm_arns]
  }

  statement {
    sid       = "AccountWideReads"
    actions   = local.account_wide_read_actions
    resources = ["*"]
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Teardown role (scheduled workflow on the default branch)
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_iam_role" "teardown" {
  name                 = "${var.name_prefix}-github-teardown"
  description          = "GitHub Actions, scheduled teardown of ${var.github_repository}: delete managed endpoints only"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["teardown"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "teardown" {
  name   = "teardown"
  role   = aws_iam_role.teardown.id
  policy = data.aws_iam_policy_document.teardown.json
}

data "aws_iam_policy_document" "teardown" {
  statement {
    sid       = "FindEndpoints"
    actions   = ["sagemaker:ListEndpoints"] # no resource-level permissions
    resources = ["*"]
  }

  statement {
    sid       = "InspectEndpoints"
    actions   = ["sagemaker:DescribeEndpoint", "sagemaker:ListTags"]
    resources = [local.sagemaker_endpoint_arns]
  }

  statement {
    sid       = "DeleteManagedEndpointsOnly"
    actions   = ["sagemaker:DeleteEndpoint"]
    resources = [local.sagemaker_endpoint_arns]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/managed-by"
      values   = ["smgitops"]
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Drift role (scheduled workflow on the default branch)
# ---------------------------------------------------------------------------------------------------------------------

# `smgitops verify` compares the live endpoint with the release file through SageMaker's Describe* calls alone. The
# configuration name it expects is computed from the release and the bucket and key ARNs it is given, so the role
# reads no state, no artifact and uses no key: it can see what runs and change nothing.
resource "aws_iam_role" "drift" {
  name                 = "${var.name_prefix}-github-drift"
  description          = "GitHub Actions, scheduled drift check of ${var.github_repository}: describe SageMaker resources only"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["drift"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "drift" {
  name   = "drift"
  role   = aws_iam_role.drift.id
  policy = data.aws_iam_policy_document.drift.json
}

data "aws_iam_policy_document" "drift" {
  statement {
    sid       = "FindEndpoints"
    actions   = ["sagemaker:ListEndpoints"] # no resource-level permissions
    resources = ["*"]
  }

  statement {
    sid       = "DescribeSageMaker"
    actions   = local.sagemaker_read_actions
    resources = [local.sagemaker_model_arns, local.sagemaker_config_arns, local.sagemaker_endpoint_arns]
  }
}
