output "writer_endpoint" {
  description = "host:port of the Multi-AZ writer."
  value       = aws_db_instance.primary.endpoint
}

output "reader_endpoints" {
  description = "host:port of each read replica."
  value       = aws_db_instance.replica[*].endpoint
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret holding the generated master password."
  value       = aws_db_instance.primary.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "Security group of the database instances."
  value       = aws_security_group.this.id
}
