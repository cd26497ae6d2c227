variable "name" {
  description = "Name prefix, e.g. come2us-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the Redis security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private data subnets, one per availability zone."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on 6379 (the EKS cluster security group)."
  type        = list(string)
}

variable "engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "clusters" {
  description = "The two Redis roles of design section 5: session (sessions and non-durable data) and cache. nodes is the number of cache nodes (one primary plus replicas)."
  type = map(object({
    node_type = string
    nodes     = number
  }))

  validation {
    condition     = alltrue([for k in ["session", "cache"] : contains(keys(var.clusters), k)])
    error_message = "clusters must define both the session and the cache Redis."
  }

  validation {
    condition     = alltrue([for c in values(var.clusters) : c.nodes >= 2])
    error_message = "Every Redis needs at least two nodes (a primary and a replica in the other zone) for Multi-AZ failover."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
