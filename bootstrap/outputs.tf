output "apply_role_arns" {
  description = "Apply role of each GitHub environment (environment => role ARN): the deploy workflow's role-to-assume."
  value       = { for env, role in aws_iam_role.apply : env => role.arn }
}

output "artifact_bucket" {
  description = "Bucket of the model archives (models/<id>/sha256=<digest>/model.tar.gz) and data capture: terraform/'s artifact_bucket."
  value       = aws_s3_bucket.artifacts.id
}

output "drift_role_arn" {
  description = "Role of the scheduled drift workflow (read only: describes endpoints, configurations and models)."
  value       = aws_iam_role.drift.arn
}

output "execution_role_arns" {
  description = "Role SageMaker assumes to serve each environment's endpoints (environment => role ARN): terraform/'s execution_role_arn for that environment (GitHub: the per-environment variable SMGITOPS_EXECUTION_ROLE_ARN)."
  value       = { for env, role in aws_iam_role.execution : env => role.arn }
}

output "github_oidc_subject_template" {
  description = "JSON body of PUT /repos/{owner}/{repo}/actions/oidc/customization/sub: the repository's OIDC subject template every trust policy here expects (set it before the first workflow run)."
  value       = jsonencode(local.github_oidc_subject_template)
}

output "github_oidc_subjects" {
  description = "The OIDC subject each GitHub role trusts (plan, teardown, drift, apply-<env> => subject; plan's is a StringLike pattern)."
  value       = merge(local.exact_subjects, { plan = local.plan_subject })
}

output "kms_key_arn" {
  description = "Key encrypting state, artifacts, endpoint storage and data capture: terraform/'s kms_key_arn and the backend's kms_key_id."
  value       = aws_kms_key.this.arn
}

output "lock_table" {
  description = "DynamoDB lock table: the S3 backend's dynamodb_table."
  value       = aws_dynamodb_table.lock.name
}

output "oidc_provider_arn" {
  description = "The GitHub Actions OIDC identity provider (created here, or the one given as github_oidc_provider_arn)."
  value       = local.github_oidc_provider_arn
}

output "plan_role_arn" {
  description = "Role of pull-request workflows (read-only terraform plan)."
  value       = aws_iam_role.plan.arn
}

output "region" {
  description = "Region of every bootstrap resource: the S3 backend's region."
  value       = var.region
}

output "state_bucket" {
  description = "Bucket holding terraform/'s state (key smgitops/<environment>.tfstate): the S3 backend's bucket."
  value       = aws_s3_bucket.state.id
}

output "teardown_role_arn" {
  description = "Role of the scheduled teardown workflow."
  value       = aws_iam_role.teardown.arn
}
