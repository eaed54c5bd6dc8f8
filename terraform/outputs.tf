output "endpoint_config_name" {
  description = "Name of the endpoint configuration now serving: <endpoint>-<8 hex of its content> (smgitops.naming.endpoint_config_name)."
  value       = aws_sagemaker_endpoint.this.endpoint_config_name
}

output "endpoint_name" {
  description = "Name of the SageMaker endpoint."
  value       = aws_sagemaker_endpoint.this.name
}

output "model_names" {
  description = "SageMaker model of each served model id (model id => <model-id>-<environment>-<12 hex of the digest>)."
  value       = { for id, m in aws_sagemaker_model.this : id => m.name }
}

output "variants" {
  description = "Production variants in release order: name, model_name and weight (integer percent)."
  value       = [for v in local.variants : { name = v.name, model_name = v.model_name, weight = v.weight }]
}
