resource "aws_sagemaker_endpoint_configuration" "no_capture" {
  name = "cfg-a"
  production_variants {
    variant_name           = "blue"
    model_name             = "model-a"
    initial_instance_count = 1
    instance_type          = "ml.t2.large"
  }
}
resource "aws_sagemaker_endpoint_configuration" "capture_off" {
  name = "cfg-b"
  production_variants {
    variant_name           = "blue"
    model_name             = "model-a"
    initial_instance_count = 1
    instance_type          = "ml.t2.large"
  }
  data_capture_config {
    enable_capture              = false
    initial_sampling_percentage = 100
    destination_s3_uri          = "s3://artifacts/data-capture/dev"
    capture_options {
      capture_mode = "Input"
    }
  }
}
resource "aws_sagemaker_endpoint_configuration" "zero_sampling" {
  name = "cfg-c"
  production_variants {
    variant_name           = "blue"
    model_name             = "model-a"
    initial_instance_count = 1
    instance_type          = "ml.t2.large"
  }
  data_capture_config {
    enable_capture              = true
    initial_sampling_percentage = 0
    destination_s3_uri          = "s3://artifacts/data-capture/dev"
    capture_options {
      capture_mode = "Input"
    }
  }
}
