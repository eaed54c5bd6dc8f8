resource "aws_s3_bucket" "artifacts" {
  bucket = "smgitops-artifacts"
}
