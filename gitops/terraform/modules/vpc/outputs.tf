output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC, for security group rules that admit in-VPC clients."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "The two workload availability zones."
  value       = var.azs
}

output "public_subnet_ids" {
  description = "Public subnets (load balancers, NAT)."
  value       = aws_subnet.public[*].id
}

output "app_subnet_ids" {
  description = "Private app subnets (EKS nodes and pods)."
  value       = aws_subnet.app[*].id
}

output "data_subnet_ids" {
  description = "Private data subnets (RDS, ElastiCache)."
  value       = aws_subnet.data[*].id
}

output "kafka_subnet_ids" {
  description = "Private MSK client subnets, one per broker zone."
  value       = aws_subnet.kafka[*].id
}

output "private_route_table_ids" {
  description = "Route tables of the app and data tiers, for gateway VPC endpoints."
  value       = concat(aws_route_table.app[*].id, [aws_route_table.data.id])
}

output "nat_gateway_count" {
  description = "How many NAT gateways this environment runs."
  value       = length(aws_nat_gateway.this)
}
