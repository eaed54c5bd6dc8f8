# S3 buckets. Provider 3.39 configures versioning, encryption, logging and lifecycle inline on aws_s3_bucket (the
# separate aws_s3_bucket_* resources for them arrived in 4.0); public access blocks and policies are resources.
#
#   state     Terraform state of terraform/ (smgitops/<env>.tfstate and its .tflock objects). Never destroyed.
#   artifacts model archives at models/<id>/sha256=<digest>/model.tar.gz, written once and never changed or
#             deleted; endpoints' data capture under data-capture/<endpoint>/.
#   logs      S3 server access logs of the two buckets above.

# ---------------------------------------------------------------------------------------------------------------------
# Access logs
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_145:S3 server access logging only delivers to buckets encrypted with SSE-S3, not SSE-KMS.
  #checkov:skip=CKV_AWS_18:This is the access-log sink; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Single-region deployment; access logs are kept in the region they describe.
  #checkov:skip=CKV2_AWS_62:Nothing consumes access-log events; the logs are read on demand.
  bucket = "${var.name_prefix}-access-logs-${local.account_id}"

  versioning {
    enabled = true
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm = "AES256"
      }
    }
  }

  lifecycle_rule {
    id                                     = "expire-access-logs"
    enabled                                = true
    abort_incomplete_multipart_upload_days = 7

    expiration {
      days = 365
    }

    noncurrent_version_expiration {
      days = 30
    }
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs_bucket.json

  # S3 rejects a policy change while the public access block is being applied.
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

data "aws_iam_policy_document" "logs_bucket" {
  statement {
    sid       = "S3ServerAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Terraform state
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_144:Versioning plus prevent_destroy protect the state; a replica in a second region is not worth its cost for state that can be rebuilt by import.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to state writes; the lock table and lock objects serialise them.
  bucket = local.state_bucket_name

  versioning {
    enabled = true
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm     = "aws:kms"
        kms_master_key_id = aws_kms_key.this.arn
      }
      bucket_key_enabled = true
    }
  }

  logging {
    target_bucket = aws_s3_bucket.logs.id
    target_prefix = "${local.state_bucket_name}/"
  }

  lifecycle_rule {
    id                                     = "expire-old-state-versions"
    enabled                                = true
    abort_incomplete_multipart_upload_days = 7

    # Every apply writes a new state version; a quarter of history is plenty to recover from a bad apply.
    noncurrent_version_expiration {
      days = 90
    }
  }

  lifecycle {
    prevent_destroy = true
  }

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "state" {
  bucket     = aws_s3_bucket.state.id
  policy     = data.aws_iam_policy_document.state_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.state]
}

data "aws_iam_policy_document" "state_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Model artifacts and data capture
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_144:Artifacts are reproducible from Git (deterministic training) and pinned by digest; a cross-region replica buys nothing the release file does not already give.
  #checkov:skip=CKV2_AWS_62:Publishing is driven by the pipeline, not by bucket events.
  bucket = local.artifact_bucket_name

  versioning {
    enabled = true
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm     = "aws:kms"
        kms_master_key_id = aws_kms_key.this.arn
      }
      bucket_key_enabled = true
    }
  }

  logging {
    target_bucket = aws_s3_bucket.logs.id
    target_prefix = "${local.artifact_bucket_name}/"
  }

  # Model archives never expire (a rollback must find them); captured requests and responses do.
  lifecycle_rule {
    id                                     = "expire-data-capture"
    enabled                                = true
    prefix                                 = "${local.data_capture_prefix}/"
    abort_incomplete_multipart_upload_days = 7

    expiration {
      days = 30
    }

    noncurrent_version_expiration {
      days = 1
    }
  }

  # Releases in Git history point at these archives by digest; a rollback needs them.
  lifecycle {
    prevent_destroy = true
  }

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "artifacts" {
  bucket     = aws_s3_bucket.artifacts.id
  policy     = data.aws_iam_policy_document.artifacts_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}

data "aws_iam_policy_document" "artifacts_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Content-addressed keys are written once: a PutObject must carry If-None-Match (S3 then refuses an existing key
  # with 412). Multipart uploads are refused too (UploadPart cannot carry the header); archives are small, single PUTs.
  statement {
    sid       = "DenyModelWritesWithoutIfNoneMatch"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.models_prefix}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
  }

  # Published archives are referenced by digest from releases in Git history; deleting one would break rollback.
  # Removing an archive on purpose means changing this policy first, in review.
  statement {
    sid    = "DenyModelDeletionAndRewrites"
    effect = "Deny"
    actions = [
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:PutObjectAcl",
      "s3:PutObjectVersionAcl",
    ]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.models_prefix}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}
