# DynamoDB lock table of the S3 backend. Terraform 1.11 takes both this lock and the native lock object
# (use_lockfile = true) when both are configured, so the table can be dropped once every user is on >= 1.10.

resource "aws_dynamodb_table" "lock" {
  name         = local.lock_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "LockID"

  attribute {
    name = "LockID"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}
