variable "repositories" {
  description = "Private repositories to create: one per service image plus opsctl."
  type        = list(string)
}

variable "keep_images" {
  description = "How many images each repository keeps; older ones expire."
  type        = number
  default     = 50
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose Actions workflows may push images."
  type        = string
}

variable "github_environment" {
  description = "GitHub Actions environment (dev or prod) that the push job runs in; the OIDC subject must name it."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
