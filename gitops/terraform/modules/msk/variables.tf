variable "cluster_name" {
  description = "MSK cluster name, e.g. come2us-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the broker security group."
  type        = string
}

variable "client_subnet_ids" {
  description = "One private subnet per broker zone; MSK spreads the brokers evenly over them."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to reach the IAM-authenticated listener (9098)."
  type        = list(string)
}

variable "kafka_version" {
  description = "Apache Kafka version of the brokers and of the configuration."
  type        = string
  default     = "3.6.0"
}

variable "broker_count" {
  description = "Number of brokers (design section 6.4: three, so a quorum of two survives a broker loss)."
  type        = number
  default     = 3
}

variable "broker_instance_type" {
  description = "Broker instance type."
  type        = string
}

variable "broker_volume_size" {
  description = "EBS storage per broker in GiB; seven days of retention must fit."
  type        = number
}

variable "broker_log_group" {
  description = "CloudWatch log group for broker logs (created by the logs module with 30-day retention)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
