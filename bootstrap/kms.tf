# One customer managed key for everything smgitops stores: Terraform state and its lock table, model artifacts,
# endpoint storage volumes and data capture. The key policy only delegates to IAM in this account (the AWS default);
# each role below is granted exactly the KMS actions it needs, on this key only.

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix}: Terraform state, model artifacts, endpoint storage and data capture"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json

  # The state and every model archive are encrypted with this key: once it is deleted they cannot be read.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy: the account root principal delegates to IAM policies, which grant each role only what it needs.
  #checkov:skip=CKV_AWS_111:Key policy: the account root principal delegates to IAM policies, which grant each role only what it needs.
  #checkov:skip=CKV_AWS_356:In a key policy the resource "*" is the key itself.
  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" means this key

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}
