resource "aws_s3_bucket" "state" {
  bucket = "smgitops-tfstate-123456789012"
  lifecycle {
    prevent_destroy = true
  }
}
