# Minimal AWS stack: copy next to the root module (terraform/aws/terraform.tfvars) and edit.
region   = "us-east-1"
upstream = "gemini"
