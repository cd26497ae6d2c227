variable "cluster_name" {
  description = "EKS cluster whose nodes Karpenter provisions."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of that cluster (Karpenter calls eks:DescribeCluster to find the API endpoint)."
  type        = string
}

variable "region" {
  description = "AWS region, for the ARNs in the controller policy."
  type        = string
}

variable "namespace" {
  description = "Namespace of the Karpenter controller's service account."
  type        = string
  default     = "kube-system"
}

variable "service_account" {
  description = "Service account the Karpenter chart creates."
  type        = string
  default     = "karpenter"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
