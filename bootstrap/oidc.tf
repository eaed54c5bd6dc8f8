# GitHub Actions' OIDC identity provider. Workflows exchange their job token for short-lived credentials of the
# plan / apply / teardown / drift roles (roles.tf); no long-lived AWS keys exist anywhere. An account holds one
# provider per URL: set github_oidc_provider_arn to reuse one that already exists.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.github_oidc_provider_arn == null ? 1 : 0

  url             = "https://${local.github_oidc_host}"
  client_id_list  = [local.github_audience]
  thumbprint_list = var.github_oidc_thumbprints
}

# Trust policies of the GitHub roles: this provider, our audience, and a subject in the repository's customised
# template (locals.tf), which names the workflow file and the ref, environment or pull request it runs for.
#
# apply-<env>, teardown, drift: StringEquals on one exact subject. Only deploy.yml (teardown.yml, drift.yml) as it is
# on the default branch can assume them; a pull request, another branch or another workflow file naming the
# environment gets a different subject.
data "aws_iam_policy_document" "github_trust" {
  for_each = local.exact_subjects

  statement {
    sid     = "GitHubActionsOidc"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:aud"
      values   = [local.github_audience]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:sub"
      values   = [each.value]
    }
  }
}

# plan: StringLike, because a pull request's subject carries its number (pr.yml@refs/pull/<n>/merge). The pattern
# is literal up to the number, so only a pull_request run of this repository's pr.yml matches. That run executes
# the pull request's own code, which its author controls: the plan role is read-only (roles.tf).
data "aws_iam_policy_document" "github_plan_trust" {
  statement {
    sid     = "GitHubActionsOidcPullRequests"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_host}:aud"
      values   = [local.github_audience]
    }

    condition {
      test     = "StringLike"
      variable = "${local.github_oidc_host}:sub"
      values   = [local.plan_subject]
    }
  }
}
