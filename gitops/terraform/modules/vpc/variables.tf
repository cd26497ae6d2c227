variable "name" {
  description = "Name prefix for every network resource, e.g. come2us-prod."
  type        = string
}

variable "cidr" {
  description = "IPv4 CIDR block of the VPC (a /16 leaves room for the /19 app subnets that hold pod IPs)."
  type        = string
}

variable "azs" {
  description = "The two availability zones that carry the public, app and data tiers."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 2
    error_message = "The network spans exactly two availability zones (public, app and data subnets in each)."
  }
}

variable "kafka_extra_az" {
  description = "Third availability zone used only by the MSK client subnets: MSK spreads brokers evenly over its subnets, so three brokers need three subnets in three distinct zones."
  type        = string
}

variable "single_nat_gateway" {
  description = "true puts one NAT gateway in the first public subnet (dev); false puts one in every zone so an AZ outage does not cut egress (prod)."
  type        = bool
}

variable "cluster_name" {
  description = "EKS cluster name, used for the kubernetes.io/cluster and karpenter.sh/discovery subnet tags."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
