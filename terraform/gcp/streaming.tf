# The streaming gateway. google-beta's google_api_gateway_gateway has no streamingMode field and
# a gateway's streaming mode is fixed when it is created, so the gateway itself is created,
# re-pointed and deleted by scripts/streaming_gateway.py through the API Gateway v1 REST API
# (streamingMode = STREAMING_MODE_ENABLED). Needs Python 3 and Google credentials where
# Terraform runs: the provider's token at apply, Application Default Credentials or gcloud
# for plan (describe) and destroy. Set gateway.streaming = false for the pure-provider
# gateway (gateway.tf), which buffers.

data "google_client_config" "current" {}

# Lifetime of the gateway: created with streaming on; deleted on destroy or when its id,
# region or project changes.
resource "terraform_data" "streaming_gateway" {
  count = var.gateway.streaming ? 1 : 0

  triggers_replace = [var.project_id, local.gateway_region, local.streaming_gateway_id]
  input = {
    gateway = local.streaming_gateway_id
    project = var.project_id
    python  = var.gateway.python
    region  = local.gateway_region
    script  = local.streaming_gateway_script
  }

  provisioner "local-exec" {
    interpreter = [var.gateway.python, local.streaming_gateway_script]
    command     = "ensure"
    environment = {
      # Only the child process sees the token (the script never prints it); unmarking it keeps
      # the script's own messages visible instead of "output suppressed".
      GOOGLE_OAUTH_ACCESS_TOKEN = nonsensitive(data.google_client_config.current.access_token)
      STREAMGATE_GW_API_CONFIG  = google_api_gateway_api_config.this.id
      STREAMGATE_GW_ID          = local.streaming_gateway_id
      STREAMGATE_GW_LABELS      = jsonencode(var.labels)
      STREAMGATE_GW_PROJECT     = var.project_id
      STREAMGATE_GW_REGION      = local.gateway_region
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = [self.input.python, self.input.script]
    command     = "delete"
    environment = {
      STREAMGATE_GW_ID      = self.input.gateway
      STREAMGATE_GW_PROJECT = self.input.project
      STREAMGATE_GW_REGION  = self.input.region
    }
  }
}

# Every new API config: point the same gateway (same hostname) at it before the old config goes.
resource "terraform_data" "streaming_gateway_config" {
  count = var.gateway.streaming ? 1 : 0

  triggers_replace = [google_api_gateway_api_config.this.id, terraform_data.streaming_gateway[0].id]

  provisioner "local-exec" {
    interpreter = [var.gateway.python, local.streaming_gateway_script]
    command     = "ensure"
    environment = {
      GOOGLE_OAUTH_ACCESS_TOKEN = nonsensitive(data.google_client_config.current.access_token)
      STREAMGATE_GW_API_CONFIG  = google_api_gateway_api_config.this.id
      STREAMGATE_GW_ID          = local.streaming_gateway_id
      STREAMGATE_GW_LABELS      = jsonencode(var.labels)
      STREAMGATE_GW_PROJECT     = var.project_id
      STREAMGATE_GW_REGION      = local.gateway_region
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Reads the gateway back (hostname for the outputs) and fails the run if it does not stream.
data "external" "streaming_gateway" {
  count = var.gateway.streaming ? 1 : 0

  program = [var.gateway.python, local.streaming_gateway_script, "describe"]
  query = {
    gateway = local.streaming_gateway_id
    project = var.project_id
    region  = local.gateway_region
  }

  depends_on = [terraform_data.streaming_gateway_config]

  lifecycle {
    postcondition {
      condition     = self.result.effective_streaming_mode == "EFFECTIVE_STREAMING_MODE_ENABLED"
      error_message = "The API Gateway gateway is missing or does not stream (effectiveStreamingMode is not EFFECTIVE_STREAMING_MODE_ENABLED). Recreate it: terraform apply -replace='terraform_data.streaming_gateway[0]'."
    }
  }
}
