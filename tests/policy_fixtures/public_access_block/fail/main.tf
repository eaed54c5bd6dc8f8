resource "aws_s3_bucket" "no_block" {
  bucket = "smgitops-no-block"
}
resource "aws_s3_bucket" "partial" {
  bucket = "smgitops-partial"
}
# Two of four: checkov's CKV2_AWS_6 would pass this; public ACLs already granted still apply.
resource "aws_s3_bucket_public_access_block" "partial" {
  bucket                  = aws_s3_bucket.partial.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = false
  restrict_public_buckets = false
}
