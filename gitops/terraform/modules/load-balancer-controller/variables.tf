variable "cluster_name" {
  description = "EKS cluster the controller runs in; it manages load balancers tagged with this name only."
  type        = string
}

variable "region" {
  description = "AWS region, for the condition on the controller's reads."
  type        = string
}

variable "namespace" {
  description = "Namespace of the controller's service account."
  type        = string
  default     = "kube-system"
}

variable "service_account" {
  description = "Service account the aws-load-balancer-controller chart creates."
  type        = string
  default     = "aws-load-balancer-controller"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
