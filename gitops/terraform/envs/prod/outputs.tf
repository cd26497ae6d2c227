output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "nat_gateway_count" {
  description = "NAT gateways in this environment."
  value       = module.vpc.nat_gateway_count
}

output "karpenter_node_role_name" {
  description = "Goes into the EC2NodeClass spec.role in gitops/platform/karpenter."
  value       = module.karpenter.node_role_name
}

output "karpenter_interruption_queue" {
  description = "Goes into the Karpenter chart's settings.interruptionQueue."
  value       = module.karpenter.interruption_queue_name
}

output "load_balancer_controller_role_arn" {
  description = "IAM role of the AWS Load Balancer Controller (bound to its service account through Pod Identity)."
  value       = module.load_balancer_controller.role_arn
}

output "rds_writer_endpoint" {
  description = "PostgreSQL writer endpoint."
  value       = module.rds.writer_endpoint
}

output "rds_reader_endpoints" {
  description = "PostgreSQL read replica endpoints."
  value       = module.rds.reader_endpoints
}

output "rds_master_user_secret_arn" {
  description = "Secrets Manager secret with the generated PostgreSQL master password."
  value       = module.rds.master_user_secret_arn
}

output "redis_primary_endpoints" {
  description = "Redis primary endpoints (session, cache)."
  value       = module.elasticache.primary_endpoints
}

output "msk_bootstrap_brokers" {
  description = "MSK bootstrap brokers for IAM auth."
  value       = module.msk.bootstrap_brokers_sasl_iam
}

output "bucket_names" {
  description = "S3 buckets by purpose."
  value       = module.s3.bucket_names
}

output "certificate_arn" {
  description = "ACM certificate for the ingress gateway and the ALB."
  value       = module.dns.certificate_arn
}

output "ecr_repository_urls" {
  description = "ECR repositories by name."
  value       = module.ecr.repository_urls
}

output "ci_role_arn" {
  description = "Set as the AWS_ROLE_ARN variable of this GitHub environment."
  value       = module.ecr.ci_role_arn
}
