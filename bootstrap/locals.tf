locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Bucket names are global: the account id makes them unique without asking anyone to pick a name.
  state_bucket_name    = "${var.name_prefix}-tfstate-${local.account_id}"
  artifact_bucket_name = "${var.name_prefix}-artifacts-${local.account_id}"
  lock_table_name      = "${var.name_prefix}-tflock"

  # terraform/ keeps one state per environment at smgitops/<environment>.tfstate (the S3 backend's key), with the
  # native lock object beside it at <key>.tflock.
  state_key_prefix = "smgitops"

  # Key prefixes inside the artifact bucket (DESIGN section 4): immutable, content-addressed model archives and the
  # endpoints' data capture.
  models_prefix       = "models"
  data_capture_prefix = "data-capture"

  github_oidc_host = "token.actions.githubusercontent.com"
  github_audience  = "sts.amazonaws.com"

  # Exact OIDC subjects (https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect).
  plan_subject     = "repo:${var.github_repository}:pull_request"
  teardown_subject = "repo:${var.github_repository}:ref:${var.teardown_ref}"
  drift_subject    = local.teardown_subject # the drift check is scheduled too: it runs on the same ref
  apply_subjects   = { for env in var.environments : env => "repo:${var.github_repository}:environment:${env}" }

  state_bucket_arn    = "arn:${local.partition}:s3:::${local.state_bucket_name}"
  artifact_bucket_arn = "arn:${local.partition}:s3:::${local.artifact_bucket_name}"

  sagemaker_arn_prefix = "arn:${local.partition}:sagemaker:${var.region}:${local.account_id}"
}

# ---------------------------------------------------------------------------------------------------------------------
# What must already exist: only the account and the region we run in.
# ---------------------------------------------------------------------------------------------------------------------

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
