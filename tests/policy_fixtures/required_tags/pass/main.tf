locals {
  tags = { "managed-by" = "smgitops", release = "dev" }
}
resource "aws_sagemaker_model" "m" {
  name                     = "model-a-0123456789ab"
  execution_role_arn       = "arn:aws:iam::123456789012:role/exec"
  enable_network_isolation = true
  primary_container {
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
  }
  tags = merge(local.tags, { "model-digest" = "0123456789abcdef" })
}
resource "aws_sagemaker_endpoint_configuration" "c" {
  name = "cfg"
  production_variants {
    variant_name           = "blue"
    model_name             = aws_sagemaker_model.m.name
    initial_instance_count = 1
    instance_type          = "ml.t2.large"
  }
  tags = local.tags
}
resource "aws_sagemaker_endpoint" "e" {
  name                 = "smgitops-dev"
  endpoint_config_name = aws_sagemaker_endpoint_configuration.c.name
  tags                 = local.tags
}
