resource "aws_s3_bucket" "artifacts" {
  bucket = "smgitops-artifacts"
}
# Allows only; nothing denies plain HTTP.
resource "aws_s3_bucket_policy" "allow_only" {
  bucket = aws_s3_bucket.artifacts.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { AWS = "arn:aws:iam::123456789012:root" }, Action = "s3:GetObject", Resource = "${aws_s3_bucket.artifacts.arn}/*" }]
  })
}
# Denies plain HTTP for objects only: ListBucket and bucket-level calls stay open to HTTP.
resource "aws_s3_bucket_policy" "objects_only" {
  bucket = aws_s3_bucket.artifacts.id
  policy = data.aws_iam_policy_document.objects_only.json
}
data "aws_iam_policy_document" "objects_only" {
  statement {
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
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
# The condition is inverted: it denies TLS requests.
resource "aws_s3_bucket_policy" "inverted" {
  bucket = aws_s3_bucket.artifacts.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Deny", Principal = "*", Action = "s3:*", Resource = "*", Condition = { Bool = { "aws:SecureTransport" = "true" } } }]
  })
}
