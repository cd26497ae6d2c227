# The dev environment: one NAT gateway and small instances, the same topology as prod.

locals {
  env          = "dev"
  name         = "come2us-${local.env}"
  cluster_name = local.name

  tags = {
    project    = "come2us"
    env        = local.env
    managed-by = "terraform"
  }
}

module "vpc" {
  source = "../../modules/vpc"

  name               = local.name
  cidr               = "10.10.0.0/16"
  azs                = ["ap-northeast-2a", "ap-northeast-2c"]
  kafka_extra_az     = "ap-northeast-2b"
  single_nat_gateway = true
  cluster_name       = local.cluster_name
  tags               = local.tags
}

module "logs" {
  source = "../../modules/logs"

  cluster_name     = local.cluster_name
  msk_cluster_name = local.name
  tags             = local.tags
}

module "eks" {
  source = "../../modules/eks"

  cluster_name       = local.cluster_name
  kubernetes_version = var.kubernetes_version
  subnet_ids         = module.vpc.app_subnet_ids

  system_node_group = {
    instance_types = ["t3.large"]
    min_size       = 2
    desired_size   = 2
    max_size       = 3
  }

  # The hub Argo CD in prod deploys dev too (gitops/argocd, gitops/platform/argocd-apps).
  admin_role_arns = var.argocd_hub_role_arn == "" ? [] : [var.argocd_hub_role_arn]

  tags = local.tags

  # EKS must find its control-plane log group (with the 30-day retention) already there.
  depends_on = [module.logs]
}

module "karpenter" {
  source = "../../modules/karpenter"

  cluster_name = module.eks.cluster_name
  cluster_arn  = module.eks.cluster_arn
  region       = var.region
  tags         = local.tags
}

module "load_balancer_controller" {
  source = "../../modules/load-balancer-controller"

  cluster_name = module.eks.cluster_name
  region       = var.region
  tags         = local.tags
}

module "rds" {
  source = "../../modules/rds"

  name                       = local.name
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.data_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  instance_class             = "db.t4g.medium"
  read_replica_count         = 1
  deletion_protection        = false
  tags                       = local.tags
}

module "elasticache" {
  source = "../../modules/elasticache"

  name                       = local.name
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.data_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]

  clusters = {
    session = { node_type = "cache.t4g.small", nodes = 2 }
    cache   = { node_type = "cache.t4g.small", nodes = 2 }
  }

  tags = local.tags
}

module "msk" {
  source = "../../modules/msk"

  cluster_name               = local.name
  vpc_id                     = module.vpc.vpc_id
  client_subnet_ids          = module.vpc.kafka_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  broker_count               = 3
  broker_instance_type       = "kafka.t3.small"
  broker_volume_size         = 100
  broker_log_group           = module.logs.log_group_names["msk_broker"]
  tags                       = local.tags
}

module "s3" {
  source = "../../modules/s3"

  name            = local.name
  region          = var.region
  vpc_id          = module.vpc.vpc_id
  route_table_ids = module.vpc.private_route_table_ids
  cluster_name    = module.eks.cluster_name

  buckets = {
    assets = { expire_days = 0 }
    loki   = { expire_days = 15 }
    tempo  = { expire_days = 7 }
  }

  pod_writers = {
    loki  = { namespace = "observability", service_account = "loki", bucket = "loki" }
    tempo = { namespace = "observability", service_account = "tempo", bucket = "tempo" }
  }

  tags = local.tags
}

module "dns" {
  source = "../../modules/dns"

  zone_name = var.zone_name
  tags      = local.tags
}

module "ecr" {
  source = "../../modules/ecr"

  repositories       = ["come2us/order-service", "come2us/payment-service", "come2us/product-service", "come2us/opsctl"]
  github_repository  = var.github_repository
  github_environment = local.env
  tags               = local.tags
}
