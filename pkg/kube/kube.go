// Package kube turns the kube section of an opsctl context into a client-go configuration, so
// every package that talks to the cluster (Argo CD's core mode, the live mesh view) selects the
// same kubeconfig, context and namespace the same way.
package kube

import (
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/come2us/opsctl/pkg/config"
)

// NamespacePrefix is prepended to the environment name to form the platform's namespace.
const NamespacePrefix = "come2us-"

// DefaultTimeout bounds each request to the Kubernetes API when neither the opsctl context
// (kube.timeout) nor the caller sets one: client-go waits forever by default, and some of its
// calls (discovery) take no context to cancel.
const DefaultTimeout = 15 * time.Second

// RESTConfig loads the user's kubeconfig the way kubectl does ($KUBECONFIG, else ~/.kube/config)
// unless k names a file, and selects k.Context when set (else the kubeconfig's current context).
// Every request gets k's timeout (default DefaultTimeout); a caller that streams (a watch)
// sets Timeout to 0 and bounds its requests with contexts instead.
func RESTConfig(k config.Kube) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.Kubeconfig != "" {
		rules.ExplicitPath = k.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: k.Context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	rc, err := cc.ClientConfig()
	if err != nil {
		what := "current context"
		if k.Context != "" {
			what = fmt.Sprintf("context %q", k.Context)
		}
		return nil, fmt.Errorf("kubeconfig %s: %w", what, err)
	}
	rc.Timeout = k.RequestTimeout()
	if rc.Timeout <= 0 {
		rc.Timeout = DefaultTimeout
	}
	return rc, nil
}

// Namespace is the namespace of env's workloads: k.Namespace when the context sets one, else
// come2us-<env>.
func Namespace(k config.Kube, env string) string {
	if k.Namespace != "" {
		return k.Namespace
	}
	return NamespacePrefix + env
}
