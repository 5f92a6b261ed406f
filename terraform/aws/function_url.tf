# Optional second front door: a Function URL per family. With streaming its invoke mode is
# RESPONSE_STREAM, so it streams too (up to the function's 15-minute timeout).
resource "aws_lambda_function_url" "family" {
  #checkov:skip=CKV_AWS_258:Disabled by default; when enabled with NONE the function itself rejects requests without a valid streamgate API key (choose AWS_IAM for SigV4 callers).
  for_each = var.function_url.enabled ? local.routes : {}

  function_name      = aws_lambda_function.family[each.key].function_name
  authorization_type = var.function_url.authorization_type
  invoke_mode        = var.streaming ? "RESPONSE_STREAM" : "BUFFERED"
}

# A public (NONE) Function URL needs both permissions since October 2025.
resource "aws_lambda_permission" "function_url" {
  #checkov:skip=CKV_AWS_301:Only for function_url.authorization_type = NONE, where the public URL is the point; the function checks streamgate API keys.
  for_each = var.function_url.enabled && var.function_url.authorization_type == "NONE" ? local.routes : {}

  statement_id           = "AllowPublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.family[each.key].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "function_url_invoke" {
  #checkov:skip=CKV_AWS_301:Limited to calls through the Function URL (invoked_via_function_url), which the function authenticates by API key.
  for_each = var.function_url.enabled && var.function_url.authorization_type == "NONE" ? local.routes : {}

  statement_id             = "AllowPublicInvokeViaFunctionUrl"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.family[each.key].function_name
  principal                = "*"
  invoked_via_function_url = true
}
