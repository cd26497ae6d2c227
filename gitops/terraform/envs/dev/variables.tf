variable "region" {
  description = "AWS region of the dev environment."
  type        = string
  default     = "ap-northeast-2"
}

variable "zone_name" {
  description = "Existing public Route53 zone of the dev environment (the certificate covers it and *.zone)."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the repository whose Actions push images to this environment's ECR."
  type        = string
  default     = "come2us/opsctl"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "argocd_hub_role_arn" {
  description = "IAM role of the hub Argo CD in the prod cluster; it is made admin of this cluster so it can deploy dev (empty: none yet)."
  type        = string
  default     = ""
}
