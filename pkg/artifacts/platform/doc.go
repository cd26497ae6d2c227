// Package platform loads the deployable platform artifacts under gitops/ — Terraform modules,
// PrometheusRule objects, Grafana dashboards, Kustomize overlays and the collector and log
// shipper configuration — with the parsers of the tools that consume them, so that tests and
// checks can assert what the artifacts promise (broker counts, retention, alert expressions,
// the metrics a dashboard reads) without a cloud account, a cluster or the terraform binary.
package platform
