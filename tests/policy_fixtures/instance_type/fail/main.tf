# One variant on an instance type outside the allowlist is enough to fail.
resource "aws_sagemaker_endpoint_configuration" "gpu" {
  name = "cfg-gpu"
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
    instance_type          = "ml.g5.xlarge"
    initial_variant_weight = 10
  }
}

# ml.t3 is not a SageMaker hosting family: off the allowlist too.
resource "aws_sagemaker_endpoint_configuration" "t3" {
  name = "cfg-t3"
  production_variants {
    variant_name           = "blue"
    model_name             = "model-a"
    initial_instance_count = 1
    instance_type          = "ml.t3.large"
    initial_variant_weight = 100
  }
}
