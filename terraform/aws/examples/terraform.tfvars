# Minimal AWS stack: copy next to the root module (terraform/aws/terraform.tfvars) and edit.
region   = "us-east-1"
upstream = "gemini"

# The per-key limits store is an on-demand DynamoDB table by default; per instance instead:
# limits = { store = "memory" }
