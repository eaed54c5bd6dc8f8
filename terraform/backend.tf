# Partial configuration: the pipeline supplies every setting at `terraform init`, from bootstrap/'s outputs:
#
#   -backend-config=bucket=<state_bucket>
#   -backend-config=key=smgitops/<environment>.tfstate
#   -backend-config=region=<region>
#   -backend-config=dynamodb_table=<lock_table>
#   -backend-config=use_lockfile=true
#   -backend-config=encrypt=true
#   -backend-config=kms_key_id=<kms_key_arn>
#
# One state per environment; Terraform >= 1.10 takes the native lock object (<key>.tflock) and the DynamoDB lock.
terraform {
  backend "s3" {}
}
