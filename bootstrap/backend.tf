# bootstrap/ creates the S3 bucket and DynamoDB table that every other Terraform state lives in, so it cannot keep
# its own state there on the first run: its state is local. Keep terraform.tfstate somewhere safe (it is not secret,
# but losing it means importing every resource by hand), or migrate it into the state bucket after the first apply;
# README.md in this directory shows both. The path can be changed with -backend-config="path=...".
terraform {
  backend "local" {
    path = "terraform.tfstate"
  }
}
