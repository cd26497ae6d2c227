variable "name" {
  description = "Identifier prefix of the database instances, e.g. come2us-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private data subnets, one per availability zone, for the DB subnet group."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on 5432 (the EKS cluster security group)."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "17"
}

variable "instance_class" {
  description = "Instance class of the writer and the readers."
  type        = string
}

variable "allocated_storage" {
  description = "Initial storage in GiB; storage autoscaling grows it up to max_allocated_storage."
  type        = number
  default     = 50
}

variable "max_allocated_storage" {
  description = "Upper bound for storage autoscaling in GiB."
  type        = number
  default     = 200
}

variable "read_replica_count" {
  description = "Number of read replicas next to the Multi-AZ writer (design section 5: several readers)."
  type        = number

  validation {
    condition     = var.read_replica_count >= 1
    error_message = "At least one read replica is required: the services send read-only queries to the readers."
  }
}

variable "database_name" {
  description = "Initial database created on the writer."
  type        = string
  default     = "come2us"
}

variable "backup_retention_period" {
  description = "Days of automated backups (read replicas require a non-zero value)."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Refuse to delete the writer."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
