variable "cluster_name" {
  description = "EKS cluster name; EKS writes control-plane logs to /aws/eks/<cluster>/cluster."
  type        = string
}

variable "msk_cluster_name" {
  description = "MSK cluster name, for the broker log group."
  type        = string
}

variable "retention_in_days" {
  description = "Days CloudWatch keeps node, control-plane and broker logs (design section 12 asks for at least 15)."
  type        = number
  # The design asks for 15 days, which CloudWatch Logs does not accept (PutRetentionPolicy takes
  # only the values listed below). 30 is the nearest accepted value that still keeps every log for
  # the 15 days the design promises; 14 would lose the last day of an investigation window.
  default = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.retention_in_days)
    error_message = "retention_in_days must be one of the values CloudWatch Logs accepts."
  }
}

variable "tags" {
  description = "Tags added to every log group."
  type        = map(string)
  default     = {}
}
