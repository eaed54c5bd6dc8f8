resource "aws_s3_bucket" "state" {
  bucket = "smgitops-tfstate-123456789012"
}
resource "aws_s3_bucket" "tf_state" {
  bucket = "smgitops-backend"
  lifecycle {
    prevent_destroy = false
  }
}
