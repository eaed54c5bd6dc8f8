terraform {
  # 1.10 brings the S3 backend's native lock file (use_lockfile) that terraform/ relies on; keep both roots on the
  # same Terraform line so that one CLI serves the whole repository.
  required_version = ">= 1.10, < 2.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Exact pin: 3.39.0 is the release the local provider mirror carries (see .terraform.lock.hcl for the
      # checksums of every platform). Raising it is a deliberate change to both roots and both lock files.
      version = "= 3.39.0"
    }
  }
}
