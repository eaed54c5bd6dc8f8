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

  # OIDC subjects in the repository's customised template (variable github_oidc_subject_claims; GitHub documents the
  # format under "Customizing the subject claims for an organization or repository"): with the keys repo, context and
  # job_workflow_ref, in this order, the subject is
  #
  #   repo:<owner/repo>:<context>:job_workflow_ref:<owner/repo>/.github/workflows/<file>@<ref>
  #
  # where <context> is environment:<name> for a job that names a GitHub environment, pull_request for a
  # pull-request run, and ref:<ref> otherwise. job_workflow_ref pins the workflow FILE and the ref it was read
  # from: a workflow added or changed on another branch, or a pull request's copy of deploy.yml, gets another subject.
  workflow_ref_prefix = "${var.github_repository}/.github/workflows"
  repo_claim          = "repo:${var.github_repository}"
  # A pull request's run reads the PR's own pr.yml at refs/pull/<number>/merge: the number varies, so this one
  # subject is a StringLike pattern (oidc.tf) whose only wildcard is the number. The plan role writes nothing.
  plan_subject     = "${local.repo_claim}:pull_request:job_workflow_ref:${local.workflow_ref_prefix}/pr.yml@refs/pull/*/merge"
  teardown_subject = "${local.repo_claim}:ref:${var.github_branch_ref}:job_workflow_ref:${local.workflow_ref_prefix}/teardown.yml@${var.github_branch_ref}"
  drift_subject    = "${local.repo_claim}:ref:${var.github_branch_ref}:job_workflow_ref:${local.workflow_ref_prefix}/drift.yml@${var.github_branch_ref}"
  apply_subjects = {
    for env in var.environments : env => "${local.repo_claim}:environment:${env}:job_workflow_ref:${local.workflow_ref_prefix}/deploy.yml@${var.github_branch_ref}"
  }
  # Roles trusting one exact subject (StringEquals): role key => subject.
  exact_subjects = merge(
    { teardown = local.teardown_subject, drift = local.drift_subject },
    { for env, sub in local.apply_subjects : "apply-${env}" => sub },
  )
  # The body of PUT /repos/{owner}/{repo}/actions/oidc/customization/sub that makes GitHub issue these subjects.
  github_oidc_subject_template = { use_default = false, include_claim_keys = var.github_oidc_subject_claims }
  github_oidc_provider_arn     = var.github_oidc_provider_arn != null ? var.github_oidc_provider_arn : aws_iam_openid_connect_provider.github[0].arn

  # Terraform's S3 backend keeps, per state, the lock item <bucket>/<key> and the state digest item <bucket>/<key>-md5
  # in the DynamoDB table (its documentation, "S3 backend", DynamoDB permissions with dynamodb:LeadingKeys).
  state_keys = { for env in var.environments : env => "${local.state_key_prefix}/${env}.tfstate" }
  lock_ids   = { for env, key in local.state_keys : env => ["${local.state_bucket_name}/${key}", "${local.state_bucket_name}/${key}-md5"] }

  state_bucket_arn    = "arn:${local.partition}:s3:::${local.state_bucket_name}"
  artifact_bucket_arn = "arn:${local.partition}:s3:::${local.artifact_bucket_name}"

  sagemaker_arn_prefix = "arn:${local.partition}:sagemaker:${var.region}:${local.account_id}"
}

# ---------------------------------------------------------------------------------------------------------------------
# What must already exist: only the account and the region we run in.
# ---------------------------------------------------------------------------------------------------------------------

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
