# Two ElastiCache Redis replication groups (design section 5): "session" and "cache". Cluster mode is
# off (design section 12: one shard, no cluster-aware clients needed); each group is a primary with
# a replica in the other zone, Multi-AZ with automatic failover (section 11).

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids

  tags = var.tags
}

resource "aws_security_group" "this" {
  name        = "${var.name}-redis"
  description = "Redis reachable from the EKS cluster only"
  vpc_id      = var.vpc_id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "redis" {
  for_each = toset(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  description                  = "Redis from EKS"
}

resource "aws_elasticache_replication_group" "this" {
  for_each = var.clusters

  replication_group_id = "${var.name}-${each.key}"
  description          = "COME2US ${each.key} Redis"

  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = each.value.node_type
  port                 = 6379
  parameter_group_name = "default.redis7"

  cluster_mode               = "disabled"
  num_cache_clusters         = each.value.nodes
  multi_az_enabled           = true
  automatic_failover_enabled = true

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.this.id]

  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auto_minor_version_upgrade = true
  snapshot_retention_limit   = each.key == "session" ? 3 : 0
  apply_immediately          = false

  tags = merge(var.tags, { role = each.key })
}
