variable "brokers" {
  type = number
}

locals {
  subnets = ["a", "b", "c"]
}

resource "aws_msk_cluster" "this" {
  number_of_broker_nodes = var.brokers
  kafka_version          = var.missing
  broker_node_group_info {
    client_subnets = [lenght(local.subnets)]
    security_groups = [aws_vpc.nope.id]
  }

  lifecycle {
    precondition {
      condition     = var.brokers % length(local.subnets) == 0
      error_message = "brokers must be a multiple of the subnets"
    }
  }
}

module "child" {
  source = "./child"
}

output "child" {
  value = module.child.nothing
}
