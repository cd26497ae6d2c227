output "cluster_arn" {
  description = "ARN of the MSK cluster (IAM policies for producers and consumers refer to it)."
  value       = aws_msk_cluster.this.arn
}

output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap broker list for IAM-authenticated clients (port 9098)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "configuration_arn" {
  description = "ARN of the broker configuration."
  value       = aws_msk_configuration.this.arn
}
