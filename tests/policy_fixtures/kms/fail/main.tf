resource "aws_sagemaker_endpoint_configuration" "no_key" {
  name = "cfg-a"
  production_variants {
    variant_name           = "blue"
    model_name             = "model-a"
    initial_instance_count = 1
    instance_type          = "ml.t2.large"
  }
}
# Storage encrypted, captured requests not: still a failure.
resource "aws_sagemaker_endpoint_configuration" "capture_unencrypted" {
  name        = "cfg-b"
  kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  production_variants {
    variant_name           = "blue"
    model_name             = "model-a"
    initial_instance_count = 1
    instance_type          = "ml.t2.large"
  }
  data_capture_config {
    enable_capture              = true
    initial_sampling_percentage = 100
    destination_s3_uri          = "s3://artifacts/data-capture/dev"
    capture_options {
      capture_mode = "Input"
    }
  }
}
