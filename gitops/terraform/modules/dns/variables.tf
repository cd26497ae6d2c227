variable "zone_name" {
  description = "Public Route53 hosted zone that already exists for this environment, e.g. come2us.example or dev.come2us.example."
  type        = string
}

variable "subject_alternative_names" {
  description = "Extra names on the certificate besides the apex; the wildcard covers api., grafana. and argocd."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
