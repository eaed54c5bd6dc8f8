# GitHub Actions' OIDC identity provider. Workflows exchange their job token for short-lived credentials of the
# plan / apply / teardown / drift roles (roles.tf); no long-lived AWS keys exist anywhere.

resource "aws_iam_openid_connect_provider" "github" {
  url             = "https://${local.github_oidc_host}"
  client_id_list  = [local.github_audience]
  thumbprint_list = var.github_oidc_thumbprints
}

# Trust policy shared by the GitHub roles: this provider, our audience, and one EXACT subject (StringEquals,
# never StringLike: a wildcard subject would let any branch, fork or environment of the repository assume the role).
data "aws_iam_policy_document" "github_trust" {
  for_each = merge(
    { plan = local.plan_subject, teardown = local.teardown_subject, drift = local.drift_subject },
    { for env, sub in local.apply_subjects : "apply-${env}" => sub },
  )

  statement {
    sid     = "GitHubActionsOidc"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.github.arn]
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
