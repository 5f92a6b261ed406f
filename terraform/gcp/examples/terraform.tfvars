# Minimal GCP stack: copy next to the root module (terraform/gcp/terraform.tfvars) and edit.
project_id = "my-project-id"
region     = "us-central1"
upstream   = "vertex"

vertex = {
  location = "global"
}
