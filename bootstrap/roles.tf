# IAM roles. Each role gets one inline policy that names exactly the resources it touches. Who may assume which role
# is in oidc.tf (the OIDC subject pins repository, context and workflow file); what each may do:
#
#   execution-<env>  assumed by SageMaker for <env>'s endpoints: read model archives (shared, content-addressed),
#                    write data-capture/<env>/ only, the key through S3 only, logs, metrics, the scikit-learn image.
#   plan             pull-request workflow (pr.yml, running the pull request's own code): READ ONLY. State objects
#                    and their digest items, archives, SageMaker and alarm descriptions, the key for decrypting
#                    through S3/DynamoDB. Plans run with -lock=false; nothing is published from a pull request.
#   apply-<env>      deploy.yml on the default branch, in GitHub environment <env>: publish archives (write-once),
#                    terraform apply of <env>'s state and lock (own lock items only), verify, smoke, canary. Every
#                    SageMaker and alarm ARN it names is <env>'s own (names end in -<env>, see below); creation
#                    requires the tags release = <env> and managed-by = smgitops, changes require them on the
#                    resource, and explicit denies keep it off resources tagged for another environment.
#   teardown         teardown.yml on the default branch: list endpoints, delete those tagged managed-by = smgitops.
#   drift            drift.yml on the default branch (`smgitops verify`): the plan role's read-only policy (verify
#                    plans with -lock=false and checks the served archives' bytes); writes nothing.
#
# Names and the ARN patterns that follow from them (`smgitops validate` requires endpoint names ending in
# -<environment>; SageMaker ARNs carry names in lower case, environments are lower case):
#
#   endpoint              <endpoint>                        endpoint/*-<env>
#   endpoint config       <endpoint>-<8 hex>                endpoint-config/*-<env>-????????
#   model                 <model-id>-<env>-<12 hex>         model/*-<env>-????????????
#   alarm                 <endpoint>/<variant>/5xx-rate     alarm:*-<env>/*/5xx-rate (and /p99-latency)
#   data capture          data-capture/<env>/<endpoint>/... data-capture/<env>/*
#
# Each pattern is anchored at the end of the name: another environment's name ends in -<other> (endpoint), in
# -<other>-<8 or 12 characters> (configuration, model), or has its first "/" right after -<other> (alarm; endpoint
# and variant names contain no "/"), so no name of environment B matches a pattern of environment A. The tag
# conditions are the second lock: explicit denies refuse any change to a resource tagged release = <other> and any
# request setting release or managed-by to another value or removing them. Residual: a resource with a name of
# <env>'s form that carries no release tag (made by hand) can be tagged, and so adopted, by <env>'s apply role.

# ---------------------------------------------------------------------------------------------------------------------
# Policy fragments shared by several roles
# ---------------------------------------------------------------------------------------------------------------------

locals {
  sagemaker_model_arns    = "${local.sagemaker_arn_prefix}:model/*"
  sagemaker_config_arns   = "${local.sagemaker_arn_prefix}:endpoint-config/*"
  sagemaker_endpoint_arns = "${local.sagemaker_arn_prefix}:endpoint/*"
  alarm_arn_prefix        = "arn:${local.partition}:cloudwatch:${var.region}:${local.account_id}:alarm"
  alarm_arns              = "${local.alarm_arn_prefix}:*"

  # environment => the ARN patterns of that environment's own resources (table above)
  env_sagemaker_arns = {
    for env in var.environments : env => {
      endpoint = "${local.sagemaker_arn_prefix}:endpoint/*-${env}"
      config   = "${local.sagemaker_arn_prefix}:endpoint-config/*-${env}-????????"
      model    = "${local.sagemaker_arn_prefix}:model/*-${env}-????????????"
    }
  }
  env_alarm_arns = {
    for env in var.environments : env => [
      "${local.alarm_arn_prefix}:*-${env}/*/5xx-rate",
      "${local.alarm_arn_prefix}:*-${env}/*/p99-latency",
    ]
  }

  # Tags every smgitops resource carries (terraform/'s provider default_tags); they decide which role may touch it.
  ownership_tag_keys = ["managed-by", "release"]

  sagemaker_read_actions = [
    "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DescribeModel",
    "sagemaker:ListTags",
  ]
  sagemaker_change_actions = [
    "sagemaker:AddTags",
    "sagemaker:DeleteEndpoint",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:DeleteModel",
    "sagemaker:DeleteTags",
    "sagemaker:InvokeEndpoint",
    "sagemaker:UpdateEndpoint",
    "sagemaker:UpdateEndpointWeightsAndCapacities",
  ]
  alarm_change_actions = [
    "cloudwatch:DeleteAlarms",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:TagResource",
    "cloudwatch:UntagResource",
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
  kms_read_actions = ["kms:Decrypt", "kms:DescribeKey"]
  kms_data_actions = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]

  kms_via_s3        = "s3.${var.region}.amazonaws.com"
  kms_via_dynamodb  = "dynamodb.${var.region}.amazonaws.com"
  kms_via_sagemaker = "sagemaker.${var.region}.amazonaws.com"
}

# ---------------------------------------------------------------------------------------------------------------------
# SageMaker execution roles (one per environment)
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  for_each = toset(var.environments)

  name               = "${var.name_prefix}-sagemaker-execution-${each.key}"
  description        = "Assumed by SageMaker to serve the smgitops endpoints of environment ${each.key}"
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
  for_each = toset(var.environments)

  name   = "serve-models-${each.key}"
  role   = aws_iam_role.execution[each.key].id
  policy = data.aws_iam_policy_document.execution[each.key].json
}

data "aws_iam_policy_document" "execution" {
  for_each = toset(var.environments)

  # Archives are content-addressed and shared: promotion serves in prod the very digest dev served.
  statement {
    sid       = "ReadModelArchives"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.models_prefix}/*"]
  }

  statement {
    sid       = "WriteThisEnvironmentsDataCapture"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.data_capture_prefix}/${each.key}/*"]
  }

  statement {
    sid       = "LocateBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [aws_s3_bucket.artifacts.arn]
  }

  # Archives and captured data are SSE-KMS objects: the key is used by S3 on the role's behalf, never directly.
  statement {
    sid       = "UseTheKeyThroughS3"
    actions   = local.kms_data_actions
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_s3]
    }
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
      "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/*-${each.key}",
      "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/*-${each.key}:log-stream:*",
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
# Plan role (pull requests): read only
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_iam_role" "plan" {
  name                 = "${var.name_prefix}-github-plan"
  description          = "GitHub Actions, pull requests of ${var.github_repository} (pr.yml): read-only terraform plan"
  assume_role_policy   = data.aws_iam_policy_document.github_plan_trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "plan" {
  name   = "plan"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan.json
}

data "aws_iam_policy_document" "plan" {
  # Every environment's state and its native lock object (read, to say who holds a lock); never written.
  statement {
    sid       = "ReadEveryEnvironmentsState"
    actions   = ["s3:GetObject"]
    resources = flatten([for key in values(local.state_keys) : ["${aws_s3_bucket.state.arn}/${key}", "${aws_s3_bucket.state.arn}/${key}.tflock"]])
  }

  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }

  # terraform plan -lock=false takes no lock, but reading a state checks it against its digest item <bucket>/<key>-md5;
  # the lock item <bucket>/<key> is read to say who holds a lock. GetItem only: a pull request cannot take or break one.
  statement {
    sid       = "ReadLockAndDigestItems"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.lock.arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = flatten(values(local.lock_ids))
    }

    condition {
      test     = "Null"
      variable = "dynamodb:LeadingKeys"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DescribeLockTable"
    actions   = ["dynamodb:DescribeTable"]
    resources = [aws_dynamodb_table.lock.arn]
  }

  statement {
    sid       = "DecryptThroughS3AndDynamoDb"
    actions   = local.kms_read_actions
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_s3, local.kms_via_dynamodb]
    }
  }

  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.models_prefix}/*"]
  }

  # IfExists: HeadObject of a missing key asks for ListBucket without a prefix (404 instead of 403).
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]

    condition {
      test     = "StringLikeIfExists"
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
  description          = "GitHub Actions, deploy.yml on ${var.github_branch_ref} in environment ${each.key} of ${var.github_repository}: publish, apply, verify"
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

  # -- Terraform state: this environment's key, lock object and lock items only ---------------------------------------

  statement {
    sid       = "ReadWriteThisEnvironmentsState"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.state_keys[each.key]}"]
  }

  # The native lock object is created on lock and deleted on unlock.
  statement {
    sid       = "TakeThisEnvironmentsLockObject"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.state.arn}/${local.state_keys[each.key]}.tflock"]
  }

  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }

  statement {
    sid       = "TakeThisEnvironmentsLockItems"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.lock.arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = local.lock_ids[each.key]
    }

    condition {
      test     = "Null"
      variable = "dynamodb:LeadingKeys"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DescribeLockTable"
    actions   = ["dynamodb:DescribeTable"]
    resources = [aws_dynamodb_table.lock.arn]
  }

  # -- The key: only through the services that store with it; grants only for SageMaker's own resources --------------

  statement {
    sid       = "UseTheKeyThroughServices"
    actions   = local.kms_data_actions
    resources = [aws_kms_key.this.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_s3, local.kms_via_dynamodb, local.kms_via_sagemaker]
    }
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

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via_sagemaker]
    }
  }

  # -- Artifacts: published at merge (write-once by the bucket policy), read by apply, deploy and rollback -------------

  statement {
    sid       = "PublishArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.models_prefix}/*"]
  }

  # IfExists: HeadObject of a missing key asks for ListBucket without a prefix (404 instead of 403).
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]

    condition {
      test     = "StringLikeIfExists"
      variable = "s3:prefix"
      values   = ["${local.models_prefix}/*"]
    }
  }

  statement {
    sid       = "PassThisEnvironmentsExecutionRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution[each.key].arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }

  # -- SageMaker: this environment's names only -----------------------------------------------------------------------

  # New resources must be created with this environment's tags (Terraform sends them with Create*; SageMaker
  # authorises tags on create as sagemaker:AddTags). An endpoint configuration may only name this environment's models.
  statement {
    sid       = "CreateTaggedSageMakerResources"
    actions   = ["sagemaker:AddTags", "sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig", "sagemaker:CreateModel"]
    resources = values(local.env_sagemaker_arns[each.key])

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

    condition {
      test     = "ForAllValues:ArnLike"
      variable = "sagemaker:ModelArn"
      values   = [local.env_sagemaker_arns[each.key].model]
    }
  }

  # ...and existing ones may only be changed, invoked or deleted when they carry them.
  statement {
    sid       = "ChangeThisEnvironmentsSageMakerResources"
    actions   = local.sagemaker_change_actions
    resources = values(local.env_sagemaker_arns[each.key])

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
    sid       = "ReadThisEnvironmentsSageMaker"
    actions   = local.sagemaker_read_actions
    resources = values(local.env_sagemaker_arns[each.key])
  }

  # Second lock, whatever the names: nothing tagged for another environment is changed, and the ownership tags are
  # never set to another value nor removed.
  statement {
    sid       = "DenyOtherEnvironmentsSageMakerResources"
    effect    = "Deny"
    actions   = concat(local.sagemaker_change_actions, ["sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig", "sagemaker:CreateModel"])
    resources = ["*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/release"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "aws:ResourceTag/release"
      values   = [each.key]
    }
  }

  statement {
    sid       = "DenyTaggingForAnotherEnvironment"
    effect    = "Deny"
    actions   = ["sagemaker:AddTags", "sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig", "sagemaker:CreateModel", "cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"]
    resources = ["*"]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/release"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "aws:RequestTag/release"
      values   = [each.key]
    }
  }

  statement {
    sid       = "DenyTaggingAsUnmanaged"
    effect    = "Deny"
    actions   = ["sagemaker:AddTags", "sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig", "sagemaker:CreateModel", "cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"]
    resources = ["*"]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/managed-by"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "aws:RequestTag/managed-by"
      values   = ["smgitops"]
    }
  }

  statement {
    sid       = "DenyRemovingOwnershipTags"
    effect    = "Deny"
    actions   = ["sagemaker:DeleteTags", "cloudwatch:UntagResource"]
    resources = ["*"]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "aws:TagKeys"
      values   = local.ownership_tag_keys
    }
  }

  # -- Alarms: this environment's names only ----------------------------------------------------------------------------

  # PutMetricAlarm both creates and updates; on an update CloudWatch ignores the request's tags. The exact name
  # patterns are the first lock here, the denies above and below the second.
  statement {
    sid       = "ManageThisEnvironmentsAlarms"
    actions   = local.alarm_change_actions
    resources = local.env_alarm_arns[each.key]
  }

  statement {
    sid       = "DenyOtherEnvironmentsAlarms"
    effect    = "Deny"
    actions   = local.alarm_change_actions
    resources = ["*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/release"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "aws:ResourceTag/release"
      values   = [each.key]
    }
  }

  statement {
    sid       = "ReadAlarms"
    actions   = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
    resources = local.env_alarm_arns[each.key]
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
  description          = "GitHub Actions, teardown.yml on ${var.github_branch_ref} of ${var.github_repository}: delete managed endpoints only"
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

# `smgitops verify` compares the live endpoint with the release file through SageMaker's Describe* calls, checks that
# every served archive's stored bytes are the release's, and requires an empty `terraform plan -lock=false` (state
# equal to live): exactly what a pull request's plan reads. The drift role therefore has the plan role's read-only
# policy, one document for both, and like it writes nothing (no state, no lock item, no archive, no SageMaker change).
resource "aws_iam_role" "drift" {
  name                 = "${var.name_prefix}-github-drift"
  description          = "GitHub Actions, drift.yml on ${var.github_branch_ref} of ${var.github_repository}: read only (plan -lock=false and describes)"
  assume_role_policy   = data.aws_iam_policy_document.github_trust["drift"].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "drift" {
  name   = "drift"
  role   = aws_iam_role.drift.id
  policy = data.aws_iam_policy_document.plan.json
}
