# CloudWatch keeps only the infrastructure logs (control plane, nodes, MSK brokers); application
# logs go to Loki. The groups are created here, before EKS and MSK, so that the services write into
# groups that already carry the 30-day retention instead of creating never-expiring ones.

locals {
  log_groups = {
    eks_control_plane = "/aws/eks/${var.cluster_name}/cluster"
    eks_host          = "/aws/containerinsights/${var.cluster_name}/host"
    eks_dataplane     = "/aws/containerinsights/${var.cluster_name}/dataplane"
    msk_broker        = "/aws/msk/${var.msk_cluster_name}/broker"
  }
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.log_groups

  name              = each.value
  retention_in_days = var.retention_in_days

  tags = merge(var.tags, { purpose = each.key })
}
