variable "environments" {
  type        = list(string)
  description = "GitHub environments that deploy (one apply role each, trusted only for jobs running in that environment). Each name is also the release file's `environment` and the state key smgitops/<name>.tfstate."
  default     = ["dev", "prod"]

  # The same rule as the release schema's `environment`: the name is part of every SageMaker model name.
  validation {
    condition     = length(var.environments) > 0 && alltrue([for e in var.environments : can(regex("^[a-z][a-z0-9]{0,11}$", e))])
    error_message = "The environments must be a non-empty list of release environment names: 1-12 lower-case letters and digits, starting with a letter (they are part of SageMaker model names, IAM role names and state keys)."
  }
}

variable "github_branch_ref" {
  type        = string
  description = "Git ref that deploys, teardown and drift run on (push and scheduled workflows run on the default branch). The apply, teardown and drift roles trust only their workflow file (job_workflow_ref) at this ref."
  default     = "refs/heads/main"

  validation {
    condition     = can(regex("^refs/heads/[A-Za-z0-9._/-]+$", var.github_branch_ref)) && !strcontains(var.github_branch_ref, "*")
    error_message = "The github_branch_ref must be a full branch ref such as refs/heads/main (no wildcards)."
  }
}

variable "github_oidc_provider_arn" {
  type        = string
  description = "ARN of an existing GitHub Actions OIDC provider (token.actions.githubusercontent.com) of this account to reuse; an account holds at most one provider per URL. null creates it here."
  default     = null

  validation {
    condition     = var.github_oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", var.github_oidc_provider_arn))
    error_message = "The github_oidc_provider_arn must be the ARN of the token.actions.githubusercontent.com OIDC provider (arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com), or null."
  }
}

variable "github_oidc_subject_claims" {
  type        = list(string)
  description = "Claim keys of the repository's customised OIDC subject, in order (GitHub: PUT /repos/{owner}/{repo}/actions/oidc/customization/sub with the output github_oidc_subject_template). The trust policies are written for subjects of exactly this template: repo, context and job_workflow_ref pin each role to one workflow file and one branch, environment or pull request."
  default     = ["repo", "context", "job_workflow_ref"]

  validation {
    condition     = var.github_oidc_subject_claims == tolist(["repo", "context", "job_workflow_ref"])
    error_message = "The github_oidc_subject_claims must be [\"repo\", \"context\", \"job_workflow_ref\"]: the trust policies expect subjects of that template (repo:<owner/repo>:<context>:job_workflow_ref:<workflow>@<ref>)."
  }
}

variable "github_oidc_thumbprints" {
  type        = list(string)
  description = "SHA-1 thumbprints of the certificate chain of token.actions.githubusercontent.com. AWS validates GitHub's OIDC tokens against its own trust store today, but the IAM API still requires at least one thumbprint."
  default     = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]

  validation {
    condition     = length(var.github_oidc_thumbprints) > 0 && alltrue([for t in var.github_oidc_thumbprints : can(regex("^[0-9a-f]{40}$", t))])
    error_message = "Each thumbprint must be 40 lower-case hex characters (a SHA-1 digest)."
  }
}

variable "github_repository" {
  type        = string
  description = "The GitHub repository that runs the workflows, as owner/repo. Every role's trust policy pins the exact OIDC subject built from it."

  validation {
    condition     = can(regex("^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "The github_repository must look like owner/repo (GitHub's owner and repository name characters, no wildcards)."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every name bootstrap creates (buckets, table, key alias, roles)."
  default     = "smgitops"

  validation {
    # Bucket names add "-artifacts-<12-digit account id>" (22 characters) and must stay within 63.
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", var.name_prefix))
    error_message = "The name_prefix must be 2-32 lower-case letters, digits or hyphens, starting with a letter and not ending with a hyphen (it is part of S3 bucket names)."
  }
}

variable "region" {
  type        = string
  description = "AWS region of the state, artifact and endpoint resources."
  default     = "us-east-1"
}
