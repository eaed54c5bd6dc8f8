resource "aws_sagemaker_model" "no_digest" {
  name                     = "model-a-0123456789ab"
  execution_role_arn       = "arn:aws:iam::123456789012:role/exec"
  enable_network_isolation = true
  primary_container {
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
  }
  tags = { "managed-by" = "smgitops", release = "dev" }
}
resource "aws_sagemaker_endpoint_configuration" "untagged" {
  name = "cfg"
  production_variants {
    variant_name           = "blue"
    model_name             = "model-a-0123456789ab"
    initial_instance_count = 1
    instance_type          = "ml.t2.large"
  }
}
resource "aws_sagemaker_endpoint" "wrong_owner" {
  name                 = "smgitops-dev"
  endpoint_config_name = "cfg"
  tags                 = { "managed-by" = "someone-else", release = "dev" }
}
