// Package gitops is the write path of the GitOps repository: it reads and edits the per-env
// service values files (gitops/envs/<env>/<service>/values.yaml) without disturbing a byte
// outside the changed scalars, commits with machine-readable trailers, and pushes through the
// user's own git so credential helpers, SSH agents and commit signing keep working. A push that
// loses a race is re-applied only when the file still says what we started from; otherwise the
// caller gets a ConflictError naming who changed what. It never rebases blindly and never
// force-pushes.
package gitops

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Environments returns the deployment environments the repository holds, in display order.
func Environments() []string { return []string{"dev", "prod"} }

// Services returns the CLI keys of the SAGA services, in display order.
func Services() []string { return []string{"order", "payment", "product"} }

// DefaultRoot is the directory inside the repository that holds the GitOps tree (charts/,
// envs/, argocd/, platform/).
const DefaultRoot = "gitops"

// ChartDir is the saga-service chart's directory relative to the GitOps root.
const ChartDir = "charts/saga-service"

// AppName returns the Kubernetes name of a service ("order" -> "order-service").
func AppName(service string) string { return service + "-service" }

// Namespace returns the namespace of an environment ("prod" -> "come2us-prod").
func Namespace(env string) string { return "come2us-" + env }

// ApplicationName returns the Argo CD Application of a service in an environment
// ("order", "prod" -> "order-service-prod").
func ApplicationName(service, env string) string { return AppName(service) + "-" + env }

// ValuesPath returns the slash-separated path of a service's values file below root
// (usually DefaultRoot), after checking that env and service are known.
func ValuesPath(root, env, service string) (string, error) {
	if err := ValidateTarget(env, service); err != nil {
		return "", err
	}
	return path.Join(root, "envs", env, service, "values.yaml"), nil
}

// ValidateTarget reports an error naming the accepted values when env or service is unknown.
func ValidateTarget(env, service string) error {
	if !slices.Contains(Environments(), env) {
		return fmt.Errorf("%w: environment %q (want one of %s)", ErrUnknownTarget, env, strings.Join(Environments(), ", "))
	}
	if !slices.Contains(Services(), service) {
		return fmt.Errorf("%w: service %q (want one of %s)", ErrUnknownTarget, service, strings.Join(Services(), ", "))
	}
	return nil
}
