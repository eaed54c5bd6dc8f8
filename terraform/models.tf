# One SageMaker model per model a variant serves, named <model-id>-<environment>-<12 hex of its artifact digest>:
# publishing a new archive means a new model, and a rollback finds the old one by the same name. Model names are
# account-wide, and the same artifact is served by several environments of one account (promotion), each from its
# own state: the environment in the name keeps the states from claiming the same model.

resource "aws_sagemaker_model" "this" {
  for_each = local.models

  name                     = each.value.name
  execution_role_arn       = var.execution_role_arn
  enable_network_isolation = true # the container needs nothing but the archive; no calls out

  primary_container {
    image          = local.image_uri
    model_data_url = each.value.model_data_url

    # How the SageMaker scikit-learn container finds the serving code inside model.tar.gz.
    environment = {
      SAGEMAKER_PROGRAM             = "inference.py"
      SAGEMAKER_SUBMIT_DIRECTORY    = "/opt/ml/model/code"
      SAGEMAKER_CONTAINER_LOG_LEVEL = "20"
      SAGEMAKER_REGION              = local.region
    }
  }

  tags = {
    model-id     = each.key
    model-digest = each.value.digest
  }

  lifecycle {
    precondition {
      condition     = can(regex("^[0-9a-f]{64}$", each.value.digest))
      error_message = "Model ${each.key} is served by a variant but is not defined in ${var.release_file} with a 64-hex artifact_sha256."
    }

    precondition {
      condition     = length(each.value.name) <= 63
      error_message = "SageMaker model name ${each.value.name} is longer than 63 characters: model ids are at most 36 characters and environments at most 12 (smgitops validate checks both)."
    }
  }
}
