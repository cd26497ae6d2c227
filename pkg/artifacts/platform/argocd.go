package platform

import (
	"errors"
	"fmt"
	"os"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"sigs.k8s.io/yaml"
)

// LoadApplication reads a manifest holding exactly one Argo CD Application and decodes it with
// Argo CD's own type, rejecting unknown fields (a misspelt syncPolicy key would otherwise be
// dropped silently by the API server's pruning).
func LoadApplication(path string) (*v1alpha1.Application, error) {
	var app v1alpha1.Application
	if err := loadOne(path, &app); err != nil {
		return nil, err
	}
	if app.Kind != "Application" || app.APIVersion != v1alpha1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("%s: got %s %s, want %s Application", path, app.APIVersion, app.Kind, v1alpha1.SchemeGroupVersion)
	}
	if app.Name == "" {
		return nil, fmt.Errorf("%s: Application without metadata.name", path)
	}
	return &app, nil
}

// LoadAppProject reads a manifest holding exactly one Argo CD AppProject.
func LoadAppProject(path string) (*v1alpha1.AppProject, error) {
	var proj v1alpha1.AppProject
	if err := loadOne(path, &proj); err != nil {
		return nil, err
	}
	if proj.Kind != "AppProject" || proj.APIVersion != v1alpha1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("%s: got %s %s, want %s AppProject", path, proj.APIVersion, proj.Kind, v1alpha1.SchemeGroupVersion)
	}
	return &proj, nil
}

func loadOne(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	docs, err := splitYAML(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(docs) != 1 {
		return fmt.Errorf("%s: want one YAML document, found %d", path, len(docs))
	}
	if err := yaml.UnmarshalStrict(docs[0], into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// CheckApplicationInProject applies the project's rules to an Application the way Argo CD does
// before it syncs: the project must be the one named, every source repository must be allowed
// and the destination cluster and namespace must be permitted.
func CheckApplicationInProject(app *v1alpha1.Application, proj *v1alpha1.AppProject) error {
	if app.Spec.Project != proj.Name {
		return fmt.Errorf("application %s is in project %q, not %q", app.Name, app.Spec.Project, proj.Name)
	}
	var errs []error
	for _, src := range app.Spec.GetSources() {
		if !proj.IsSourcePermitted(src) {
			errs = append(errs, fmt.Errorf("application %s: source %s is not in project %s's sourceRepos", app.Name, src.RepoURL, proj.Name))
		}
	}
	dst := app.Spec.Destination
	ok, err := proj.IsDestinationPermitted(&v1alpha1.Cluster{Server: dst.Server, Name: dst.Name}, dst.Namespace, nil)
	if err != nil {
		errs = append(errs, fmt.Errorf("application %s destination: %w", app.Name, err))
	} else if !ok {
		errs = append(errs, fmt.Errorf("application %s: destination %s/%s is not permitted by project %s", app.Name, dst.Server, dst.Namespace, proj.Name))
	}
	return errors.Join(errs...)
}
