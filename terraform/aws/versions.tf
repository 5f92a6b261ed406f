terraform {
  required_version = ">= 1.5, < 2.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.28: aws_lambda_function.response_streaming_invoke_arn and
      # aws_lambda_permission.invoked_via_function_url; 6.25/6.26: aws_api_gateway_integration
      # response_transfer_mode with timeouts up to 900 000 ms.
      version = ">= 6.28, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}
