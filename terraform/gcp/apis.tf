resource "google_project_service" "required" {
  for_each = var.enable_apis ? local.apis : {}

  project            = each.value
  service            = each.key
  disable_on_destroy = false
}
