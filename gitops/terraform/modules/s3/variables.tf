variable "name" {
  description = "Bucket name prefix, e.g. come2us-prod (bucket names are <name>-<purpose>)."
  type        = string
}

variable "region" {
  description = "AWS region, for the S3 gateway endpoint service name."
  type        = string
}

variable "vpc_id" {
  description = "VPC that gets the S3 gateway endpoint."
  type        = string
}

variable "route_table_ids" {
  description = "Private route tables that route S3 traffic through the gateway endpoint instead of NAT."
  type        = list(string)
}

variable "buckets" {
  description = "Buckets by purpose: assets (product images and static objects), loki (log chunks), tempo (trace blocks). expire_days = 0 keeps objects forever."
  type = map(object({
    expire_days = number
  }))
}

variable "cluster_name" {
  description = "EKS cluster whose workloads get bucket access through Pod Identity."
  type        = string
}

variable "pod_writers" {
  description = "In-cluster service accounts that read and write one bucket each (Loki, Tempo)."
  type = map(object({
    namespace       = string
    service_account = string
    bucket          = string
  }))
  default = {}
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
