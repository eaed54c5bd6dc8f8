# A release-driven endpoint configuration, as terraform/ writes it: checkov cannot evaluate
# yamldecode(file(...)) in HCL, so the instance type and data capture are decided on the plan.
# tests/test_policy.py plans it offline (no AWS call) with release_ok.yaml and release_bad.yaml.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "3.39.0"
    }
  }
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_get_ec2_platforms      = true
  skip_region_validation      = true

  default_tags {
    tags = {
      managed-by = "smgitops"
      release    = local.release.environment
    }
  }
}

variable "release_file" {
  type        = string
  description = "Release file to plan."
}

locals {
  release = yamldecode(file(var.release_file))
  kms_key = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  name        = "smgitops-${local.release.environment}"
  kms_key_arn = local.kms_key

  dynamic "production_variants" {
    for_each = local.release.variants
    content {
      variant_name           = production_variants.value.name
      model_name             = production_variants.value.model
      initial_instance_count = local.release.endpoint.instance_count
      instance_type          = local.release.endpoint.instance_type
      initial_variant_weight = production_variants.value.weight
    }
  }

  data_capture_config {
    enable_capture              = local.release.endpoint.data_capture.enabled
    initial_sampling_percentage = local.release.endpoint.data_capture.sampling_percentage
    destination_s3_uri          = "s3://smgitops-artifacts/data-capture/${local.release.environment}"
    kms_key_id                  = local.kms_key

    capture_options {
      capture_mode = "Input"
    }
    capture_options {
      capture_mode = "Output"
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}
