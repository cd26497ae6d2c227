# Amazon MSK for the SAGA events and the log pipeline (design section 6.4): three brokers, three
# partitions per topic, replication factor three with min.insync.replicas two (an acknowledged write
# survives the loss of any one broker), seven days of retention so failed events can be replayed,
# and no automatic topic creation: payments-paid, payments-failed, orders-failed, their .DLT topics
# and opsctl.replays are created explicitly. Clients authenticate with IAM; there is no plaintext or
# unauthenticated listener.

resource "aws_security_group" "this" {
  name        = "${var.cluster_name}-msk"
  description = "MSK brokers reachable from the EKS cluster over IAM auth only"
  vpc_id      = var.vpc_id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "iam_listener" {
  for_each = toset(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 9098
  to_port                      = 9098
  description                  = "Kafka IAM/TLS listener from EKS"
}

resource "aws_msk_configuration" "this" {
  name           = "${var.cluster_name}-brokers"
  kafka_versions = [var.kafka_version]
  description    = "COME2US broker defaults: 3 partitions, RF 3, min ISR 2, 7-day retention, no auto-created topics"

  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    num.partitions=3
    default.replication.factor=3
    min.insync.replicas=2
    log.retention.hours=168
    unclean.leader.election.enable=false
    offsets.topic.replication.factor=3
    transaction.state.log.replication.factor=3
    transaction.state.log.min.isr=2
  PROPERTIES
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.cluster_name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.client_subnet_ids
    security_groups = [aws_security_group.this.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_size
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  client_authentication {
    unauthenticated = false

    sasl {
      iam = true
    }
  }

  encryption_info {
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }

      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = var.broker_log_group
      }
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.broker_count % length(var.client_subnet_ids) == 0
      error_message = "MSK places the same number of brokers in every client subnet: broker_count must be a multiple of the number of client subnets."
    }
  }
}
