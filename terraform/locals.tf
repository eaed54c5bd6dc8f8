locals {
  # The release file is the single source of truth; `smgitops validate` has checked it before Terraform runs.
  # Defaults below mirror smgitops.release (instance_count 1, data capture on at 100 %).
  release = yamldecode(file(var.release_file))

  environment    = local.release.environment
  region         = local.release.region
  endpoint_name  = local.release.endpoint.name
  instance_type  = local.release.endpoint.instance_type
  instance_count = try(local.release.endpoint.instance_count, 1)

  # SageMaker scikit-learn serving image (AWS-owned registry account; smgitops.naming.image_uri).
  image_uri = "683313688378.dkr.ecr.${local.region}.amazonaws.com/sagemaker-scikit-learn:${local.release.image}"

  # Models referenced by at least one variant, keyed by model id. A model defined in the release but not served
  # gets no SageMaker model.
  served_model_ids = distinct([for v in local.release.variants : v.model])
  models = {
    for id in local.served_model_ids : id => {
      digest = try(local.release.models[id].artifact_sha256, "")
      # smgitops.naming.model_name: <model-id>-<environment>-<first 12 hex of the artifact digest>. Model names are
      # account-wide while each environment has its own state, and promotion serves the same artifact (same id,
      # same digest) in dev and prod of one account: without the environment both states would own one name.
      name = "${id}-${local.environment}-${substr(try(local.release.models[id].artifact_sha256, ""), 0, 12)}"
      # smgitops.naming.artifact_key: written once by `smgitops publish`
      model_data_url = "s3://${var.artifact_bucket}/models/${id}/sha256=${try(local.release.models[id].artifact_sha256, "")}/model.tar.gz"
    }
  }

  # Production variants in release order.
  variants = [
    for v in local.release.variants : {
      name           = v.name
      model_id       = v.model
      model_name     = local.models[v.model].name
      weight         = v.weight
      instance_type  = local.instance_type
      instance_count = local.instance_count
    }
  ]

  # Data capture is always configured explicitly (enabled or not): with the block left out, SageMaker's echo makes
  # the plan after apply non-empty. The prefix carries the environment: each environment's execution role may write
  # data-capture/<environment>/ only (bootstrap/roles.tf).
  data_capture = {
    enabled             = try(local.release.endpoint.data_capture.enabled, true)
    sampling_percentage = try(local.release.endpoint.data_capture.sampling_percentage, 100)
    destination         = "s3://${var.artifact_bucket}/data-capture/${local.environment}/${local.endpoint_name}"
    capture_modes       = ["Input", "Output"]
    csv_content_types   = ["text/csv"]
    json_content_types  = ["application/json"]
  }

  # -------------------------------------------------------------------------------------------------------------------
  # Endpoint configuration name: <endpoint>-<8 hex>
  #
  # Endpoint configurations are immutable and provider 3.39 has no name_prefix, so the name is derived from the
  # content: any change gives a new name (create_before_destroy then swaps the endpoint over), and returning to an
  # earlier release gives the very same name again. Recipe (smgitops.naming.endpoint_config_name computes the same):
  #
  #   content = {
  #     "data_capture": {"capture_modes": ["Input", "Output"], "csv_content_types": ["text/csv"],
  #                      "destination": "s3://<artifact_bucket>/data-capture/<environment>/<endpoint>", "enabled": <bool>,
  #                      "json_content_types": ["application/json"], "sampling_percentage": <int>},
  #     "kms_key_arn": "<kms key arn>",
  #     "variants": [ {"instance_count": <int>, "instance_type": "<type>", "model_name": "<model-id>-<env>-<12 hex>",
  #                    "name": "<variant>", "weight": <int>}, ... in release order ]
  #   }
  #   hash8 = first 8 hex of sha256( jsonencode(content) )
  #
  # jsonencode writes object keys in lexicographic order, no insignificant whitespace, integers without a fraction:
  # Python's json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False) gives the same bytes.
  # Whatever the resource below sets from the release must appear here, or a change would re-use a name.
  # -------------------------------------------------------------------------------------------------------------------
  endpoint_config_content = {
    data_capture = local.data_capture
    kms_key_arn  = var.kms_key_arn
    variants = [
      for v in local.variants : {
        instance_count = v.instance_count
        instance_type  = v.instance_type
        model_name     = v.model_name
        name           = v.name
        weight         = v.weight
      }
    ]
  }
  endpoint_config_hash = substr(sha256(jsonencode(local.endpoint_config_content)), 0, 8)
  endpoint_config_name = "${local.endpoint_name}-${local.endpoint_config_hash}"

  canary = local.release.canary

  # Tags beyond the provider's default_tags (managed-by, release). The teardown tags let the scheduled teardown
  # decide from the endpoint alone when it is past its time.
  endpoint_tags = {
    teardown-at       = local.release.teardown.at
    teardown-timezone = local.release.teardown.timezone
  }
}
