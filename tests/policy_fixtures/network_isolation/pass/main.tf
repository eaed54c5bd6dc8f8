resource "aws_sagemaker_model" "isolated" {
  name                     = "model-a-0123456789ab"
  execution_role_arn       = "arn:aws:iam::123456789012:role/exec"
  enable_network_isolation = true
  primary_container {
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
  }
}
