resource "aws_sagemaker_endpoint_configuration" "allowed" {
  name = "cfg-allowed"
  production_variants {
    variant_name           = "blue"
    model_name             = "model-a"
    initial_instance_count = 1
    instance_type          = "ml.t2.large"
    initial_variant_weight = 90
  }
  production_variants {
    variant_name           = "green"
    model_name             = "model-b"
    initial_instance_count = 1
    instance_type          = "ml.t2.medium"
    initial_variant_weight = 10
  }
}
