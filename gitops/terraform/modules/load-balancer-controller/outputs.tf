output "role_arn" {
  description = "IAM role the AWS Load Balancer Controller assumes through EKS Pod Identity."
  value       = aws_iam_role.controller.arn
}

output "service_account" {
  description = "Service account bound to the role; the chart's serviceAccount.name."
  value       = aws_eks_pod_identity_association.controller.service_account
}
