# The functions' own identity: Vertex AI user (vertex upstream only) and secret accessor on
# exactly the secrets it reads (secrets.tf, and the limits store's URL in limits.tf). Nothing else.
resource "google_service_account" "function" {
  account_id   = "${local.prefix}fn"
  project      = var.project_id
  display_name = "streamgate functions"
  description  = "Runs the streamgate functions: reads its secrets and calls the upstream."

  depends_on = [google_project_service.required]
}

resource "google_project_iam_member" "vertex_user" {
  count = var.upstream == "vertex" ? 1 : 0

  project = local.vertex_project
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.function.email}"
}

# API Gateway calls the functions as this account (gateway_config.backend_config) with an ID
# token whose audience is the function URL; it may only invoke the functions' Cloud Run services.
resource "google_service_account" "gateway" {
  account_id   = "${local.prefix}gw"
  project      = var.project_id
  display_name = "streamgate API Gateway"
  description  = "API Gateway's identity towards the streamgate functions."

  depends_on = [google_project_service.required]
}

resource "google_cloud_run_v2_service_iam_member" "gateway_invoker" {
  for_each = local.routes

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.family[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.gateway.email}"
}
