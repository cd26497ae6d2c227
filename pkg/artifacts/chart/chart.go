// Package chart renders the saga-service Helm chart in-process with the Helm v4 SDK and decodes
// every rendered object strictly into its Go type (Kubernetes, Istio, Prometheus Operator), so
// a field the API server or Istio would silently drop fails here instead. It reads the chart
// from any fs.FS, which lets callers render straight from a git checkout or an embedded tree.
package chart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"helm.sh/helm/v4/pkg/ignore"

	"github.com/come2us/opsctl/pkg/gitops"
)

// maxChartBytes bounds what Load reads, so a stray large file in a checkout cannot exhaust
// memory. The saga-service chart is a few kilobytes.
const maxChartBytes = 8 << 20

// Chart is a loaded Helm chart, ready to render with different values.
type Chart struct {
	chart *chartv2.Chart
}

// Name returns the chart's name from Chart.yaml.
func (c *Chart) Name() string { return c.chart.Metadata.Name }

// Version returns the chart's version from Chart.yaml.
func (c *Chart) Version() string { return c.chart.Metadata.Version }

// Load reads the chart in directory dir of fsys (use "." for the root), honouring .helmignore.
func Load(fsys fs.FS, dir string) (*Chart, error) {
	dir = path.Clean(dir)
	rules := ignore.Empty()
	if data, err := fs.ReadFile(fsys, path.Join(dir, ignore.HelmIgnore)); err == nil {
		r, err := ignore.Parse(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("load chart %s: parse %s: %w", dir, ignore.HelmIgnore, err)
		}
		rules = r
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	rules.AddDefaults()

	var files []*archive.BufferedFile
	var total int64
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		if dir == "." {
			rel = p
		}
		if rel == "" || rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rules.Ignore(rel, info) {
				return fs.SkipDir
			}
			return nil
		}
		if rules.Ignore(rel, info) {
			return nil
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", rel)
		}
		total += info.Size()
		if total > maxChartBytes {
			return fmt.Errorf("chart is larger than %d bytes", maxChartBytes)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{
			Name:    rel,
			ModTime: info.ModTime(),
			Data:    bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF}),
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("load chart %s: no files", dir)
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	return &Chart{chart: c}, nil
}

// LoadDir reads the chart in a directory on disk.
func LoadDir(dir string) (*Chart, error) {
	return Load(os.DirFS(dir), ".")
}

// Release names what Helm calls the release: the name and namespace templates see as
// .Release.Name and .Release.Namespace.
type Release struct {
	Name      string
	Namespace string
}

// Render renders the chart with values (a values YAML document layered over the chart's own
// values.yaml) and strictly decodes every object. Template errors, including the chart's own
// `fail` checks, come back as errors; nothing is partially returned.
func (c *Chart) Render(ctx context.Context, rel Release, values []byte) (*Manifest, error) {
	vals, err := common.ReadValues(values)
	if err != nil {
		return nil, fmt.Errorf("render %s: read values: %w", c.Name(), err)
	}
	top, err := util.ToRenderValues(c.chart, vals, common.ReleaseOptions{
		Name:      rel.Name,
		Namespace: rel.Namespace,
		Revision:  1,
		IsInstall: true,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", c.Name(), err)
	}
	eng := engine.Engine{Strict: true}
	out, err := eng.RenderWithContext(ctx, c.chart, top)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", c.Name(), err)
	}

	names := make([]string, 0, len(out))
	for name := range out {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") || path.Ext(name) == ".txt" {
			continue // helpers and NOTES.txt are not manifests
		}
		names = append(names, name)
	}
	sort.Strings(names)

	m := &Manifest{}
	for _, name := range names {
		objs, err := Decode([]byte(out[name]))
		if err != nil {
			return nil, fmt.Errorf("render %s: %s: %w", c.Name(), name, err)
		}
		for i := range objs {
			objs[i].Source = name
		}
		m.Objects = append(m.Objects, objs...)
	}
	return m, nil
}

// RenderService renders one service in one environment from a GitOps tree laid out as in this
// repository: the chart at <root>/charts/saga-service and values at
// <root>/envs/<env>/<service>/values.yaml, released as <service>-service in come2us-<env>, the
// way the Argo CD ApplicationSet does. root is usually gitops.DefaultRoot.
func RenderService(ctx context.Context, fsys fs.FS, root, env, service string) (*Manifest, error) {
	valuesPath, err := gitops.ValuesPath(root, env, service)
	if err != nil {
		return nil, err
	}
	c, err := Load(fsys, path.Join(root, gitops.ChartDir))
	if err != nil {
		return nil, err
	}
	values, err := fs.ReadFile(fsys, valuesPath)
	if err != nil {
		return nil, fmt.Errorf("render %s/%s: %w", env, service, err)
	}
	m, err := c.Render(ctx, Release{Name: gitops.AppName(service), Namespace: gitops.Namespace(env)}, values)
	if err != nil {
		return nil, fmt.Errorf("render %s/%s: %w", env, service, err)
	}
	return m, nil
}
