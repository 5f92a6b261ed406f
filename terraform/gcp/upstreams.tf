# The ordered upstream list (var.upstreams) as STREAMGATE_UPSTREAMS, which lib/config.py reads
# and which takes precedence over STREAMGATE_UPSTREAM. Each Gemini API upstream's key is a secret
# of its own, injected by Cloud Run as the variable its entry names (apiKeyEnv); the key is never
# in the list. The function's account may use Vertex AI in each listed Vertex upstream's project.
locals {
  listed_upstreams = [
    for i, u in var.upstreams : merge(u, {
      name    = coalesce(u.name, "${u.kind}-${i + 1}")
      key_env = "STREAMGATE_UPSTREAM_KEY_${i + 1}"
    })
  ]
  upstream_list = [
    for u in local.listed_upstreams : merge(
      { kind = u.kind, name = u.name },
      u.kind == "vertex" ? { project = coalesce(u.project, var.project_id), location = u.location } : {},
      u.kind == "gemini" ? { apiKeyEnv = u.key_env } : {},
      u.base_url == null ? {} : { baseUrl = u.base_url },
    )
  ]
  upstreams_environment = length(var.upstreams) > 0 ? { STREAMGATE_UPSTREAMS = jsonencode(local.upstream_list) } : {}
}

# What the list needs: a secret per Gemini API upstream, Vertex AI in each Vertex upstream's project.
locals {
  listed_gemini          = { for u in local.listed_upstreams : u.name => u if u.kind == "gemini" }
  listed_vertex_projects = toset([for u in local.upstream_list : u.project if u.kind == "vertex"])

  upstreams_secret_environment = {
    for name, u in local.listed_gemini : u.key_env => google_secret_manager_secret.upstream_key[name].secret_id
  }
  upstreams_secrets = {
    for name, secret in google_secret_manager_secret.upstream_key : "upstream_key_${name}" => secret.secret_id
  }
}

resource "google_secret_manager_secret" "upstream_key" {
  for_each = local.listed_gemini

  secret_id = "${local.prefix}upstream-${each.key}-key"
  project   = var.project_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

resource "google_project_service" "listed_vertex" {
  for_each = var.enable_apis ? local.listed_vertex_projects : toset([])

  project            = each.value
  service            = "aiplatform.googleapis.com"
  disable_on_destroy = false
}

resource "google_project_iam_member" "listed_vertex_user" {
  for_each = local.listed_vertex_projects

  project = each.value
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.function.email}"
}
