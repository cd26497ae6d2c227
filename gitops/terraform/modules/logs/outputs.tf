output "log_group_names" {
  description = "Log group names by purpose (eks_control_plane, eks_host, eks_dataplane, msk_broker)."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}

output "retention_in_days" {
  description = "Retention applied to every group."
  value       = var.retention_in_days
}
