resource "google_api_gateway_api" "this" {
  provider = google-beta

  api_id       = "${local.prefix}api"
  project      = var.project_id
  display_name = "streamgate"
  labels       = var.labels

  depends_on = [google_project_service.required]
}

# A config is immutable: a changed spec makes a new one (its id carries the spec's MD5), the
# gateway moves to it, and only then is the old one deleted.
resource "google_api_gateway_api_config" "this" {
  provider = google-beta

  api           = google_api_gateway_api.this.api_id
  api_config_id = "${local.prefix}${md5(local.openapi_spec)}"
  project       = var.project_id
  labels        = var.labels

  openapi_documents {
    document {
      path     = "openapi.yaml"
      contents = base64encode(local.openapi_spec)
    }
  }

  gateway_config {
    backend_config {
      google_service_account = google_service_account.gateway.email
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Only with gateway.streaming = false: this resource cannot turn streaming on (no such field
# in google-beta), so such a gateway buffers each response. See streaming.tf for the default.
resource "google_api_gateway_gateway" "buffered" {
  provider = google-beta
  count    = var.gateway.streaming ? 0 : 1

  gateway_id   = "${local.prefix}gateway-buffered"
  api_config   = google_api_gateway_api_config.this.id
  project      = var.project_id
  region       = local.gateway_region
  display_name = "streamgate (buffered)"
  labels       = var.labels
}
