output "repository_urls" {
  description = "Repository URLs by name."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "ci_role_arn" {
  description = "Role for aws-actions/configure-aws-credentials (role-to-assume) in the GitHub environment."
  value       = aws_iam_role.ci_push.arn
}
