output "primary_endpoints" {
  description = "Primary endpoint address by role (session, cache)."
  value       = { for k, g in aws_elasticache_replication_group.this : k => g.primary_endpoint_address }
}

output "reader_endpoints" {
  description = "Reader endpoint address by role (session, cache)."
  value       = { for k, g in aws_elasticache_replication_group.this : k => g.reader_endpoint_address }
}

output "security_group_id" {
  description = "Security group of the Redis nodes."
  value       = aws_security_group.this.id
}
