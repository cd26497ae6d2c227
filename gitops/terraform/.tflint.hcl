# tflint configuration for every module and environment under gitops/terraform, run by
# .ci/platform-checks as `tflint --recursive --config $PWD/.tflint.hcl` from this directory.
#
# Only the bundled terraform ruleset is enabled: the AWS ruleset (tflint-ruleset-aws), which would
# check values such as instance types and log retentions against the AWS API's lists, is not
# served by the registries CI reaches, and tflint must never download a plugin in CI. Those value
# checks stay in pkg/artifacts/platform's tests.

config {
  # Local modules (../../modules/*) are read from disk; nothing is fetched.
  call_module_type = "local"
}

# "all" rather than "recommended": beyond unused and untyped declarations it also requires
# descriptions on variables and outputs, snake_case names and the standard module layout
# (main.tf, variables.tf, outputs.tf, versions.tf), which every module here already follows.
plugin "terraform" {
  enabled = true
  preset  = "all"
}
