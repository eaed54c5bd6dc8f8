# ---------------------------------------------------------------------------------------------------------------------
# Endpoint configuration (immutable, named by its content; see locals.tf)
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_sagemaker_endpoint_configuration" "this" {
  name        = local.endpoint_config_name
  kms_key_arn = var.kms_key_arn

  dynamic "production_variants" {
    for_each = local.variants

    content {
      variant_name           = production_variants.value.name
      model_name             = aws_sagemaker_model.this[production_variants.value.model_id].name
      initial_variant_weight = production_variants.value.weight
      instance_type          = production_variants.value.instance_type
      initial_instance_count = production_variants.value.instance_count
    }
  }

  data_capture_config {
    enable_capture              = local.data_capture.enabled
    initial_sampling_percentage = local.data_capture.sampling_percentage
    destination_s3_uri          = local.data_capture.destination
    kms_key_id                  = var.kms_key_arn

    dynamic "capture_options" {
      for_each = local.data_capture.capture_modes

      content {
        capture_mode = capture_options.value
      }
    }

    capture_content_type_header {
      csv_content_types  = local.data_capture.csv_content_types
      json_content_types = local.data_capture.json_content_types
    }
  }

  lifecycle {
    # A new configuration (new name) is created and the endpoint moved onto it before the old one is deleted.
    create_before_destroy = true

    precondition {
      condition     = length(local.endpoint_config_name) <= 63
      error_message = "Endpoint name ${local.endpoint_name} is too long: ${local.endpoint_config_name} exceeds SageMaker's 63 characters."
    }

    precondition {
      condition     = sum([for v in local.variants : v.weight]) == 100
      error_message = "The variant weights in ${var.release_file} must add up to 100."
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Endpoint
# ---------------------------------------------------------------------------------------------------------------------

resource "aws_sagemaker_endpoint" "this" {
  name                 = local.endpoint_name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this.name
  tags                 = local.endpoint_tags

  lifecycle {
    # A failed update ends InService on the old configuration (with a FailureReason), which the provider counts as
    # done, and create_before_destroy would then delete the configuration still serving. The provider reads the
    # endpoint back after the update: failing here stops the apply before that deletion.
    postcondition {
      condition     = self.endpoint_config_name == aws_sagemaker_endpoint_configuration.this.name
      error_message = "Endpoint ${local.endpoint_name} still serves ${self.endpoint_config_name}, not ${aws_sagemaker_endpoint_configuration.this.name}: its update failed (see its FailureReason). The configuration it serves is kept."
    }
  }
}
