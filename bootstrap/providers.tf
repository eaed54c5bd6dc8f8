# Production provider configuration. Local mode (the emulator) writes a generated, never committed
# `local_override.tf` (any `*_override.tf`) beside this file that merges into this block and may set only:
#   skip_credentials_validation, skip_get_ec2_platforms, skip_metadata_api_check, skip_region_validation,
#   skip_requesting_account_id, s3_force_path_style, and an `endpoints {}` block pointing every service used here
#   (dynamodb, iam, kms, s3, sts) at the emulator.
# Region and default tags are never overridden: local runs use the same values as production.
provider "aws" {
  region = var.region

  default_tags {
    tags = {
      managed-by = "smgitops"
      component  = "bootstrap"
    }
  }
}
