output "node_role_name" {
  description = "IAM role for Karpenter-launched nodes; the EC2NodeClass spec.role names it."
  value       = aws_iam_role.node.name
}

output "controller_role_arn" {
  description = "IAM role the Karpenter controller assumes through EKS Pod Identity."
  value       = aws_iam_role.controller.arn
}

output "interruption_queue_name" {
  description = "SQS queue for the chart's settings.interruptionQueue."
  value       = aws_sqs_queue.interruption.name
}
