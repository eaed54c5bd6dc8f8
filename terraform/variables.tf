variable "artifact_bucket" {
  type        = string
  description = "Bucket of the model archives and data capture (bootstrap output artifact_bucket)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifact_bucket))
    error_message = "The artifact_bucket must be an S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)."
  }
}

variable "execution_role_arn" {
  type        = string
  description = "Role SageMaker assumes to serve the models (bootstrap output execution_role_arn)."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.execution_role_arn))
    error_message = "The execution_role_arn must be an IAM role ARN."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key for the endpoint's storage volumes and data capture (bootstrap output kms_key_arn)."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "release_file" {
  type        = string
  description = "Path of the release file to deploy (releases/<environment>.yaml), validated by `smgitops validate` beforehand."

  validation {
    condition     = fileexists(var.release_file)
    error_message = "The release_file must name an existing file."
  }
}
