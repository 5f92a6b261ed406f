# Minimal GCP stack: copy next to the root module (terraform/gcp/terraform.tfvars) and edit.
project_id = "my-project-id"
region     = "us-central1"
upstream   = "vertex"

vertex = {
  location = "global"
}

# Per-key limits shared by every instance (off by default: an always-on Memorystore instance):
# limits = {
#   store      = "redis"
#   network    = "projects/my-project-id/global/networks/default"
#   subnetwork = "default"
# }
