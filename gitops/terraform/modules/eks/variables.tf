variable "cluster_name" {
  description = "EKS cluster name, e.g. come2us-prod."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the system node group."
  type        = string
}

variable "subnet_ids" {
  description = "Private app subnets for the control-plane ENIs and the system node group."
  type        = list(string)
}

variable "endpoint_public_access" {
  description = "Whether the API endpoint is reachable from outside the VPC (operators' laptops, CI)."
  type        = bool
  default     = true
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "system_node_group" {
  description = "The always-on on-demand node group that runs Karpenter, CoreDNS and the platform controllers; Karpenter provisions everything else."
  type = object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
  })
}

variable "control_plane_log_types" {
  description = "Control-plane log types sent to CloudWatch (/aws/eks/<cluster>/cluster)."
  type        = list(string)
  default     = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "log_shipper" {
  description = "Service account of the Fluent Bit DaemonSet that writes node logs to CloudWatch."
  type = object({
    namespace       = string
    service_account = string
  })
  default = {
    namespace       = "observability"
    service_account = "fluent-bit"
  }
}

variable "admin_role_arns" {
  description = "IAM roles granted cluster admin through EKS access entries, e.g. the hub Argo CD's role in the prod cluster, which deploys to this cluster too."
  type        = list(string)
  default     = []
}
