package platform

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Module is one Terraform module directory (a root such as envs/prod or a child such as
// modules/msk), parsed with HCL's native-syntax parser. Only the parts that plans depend on are
// kept: variables, locals, outputs, resources, data sources and module calls.
type Module struct {
	// Dir is the directory the module was loaded from.
	Dir string
	// Sources maps each .tf file name to its bytes, for the formatting check.
	Sources map[string][]byte
	// Variables are the module's input variables by name.
	Variables map[string]*Variable
	// Locals are the local value expressions by name.
	Locals map[string]hcl.Expression
	// Outputs are the output value expressions by name.
	Outputs map[string]hcl.Expression
	// Resources are the managed resources by address "type.name".
	Resources map[string]*Resource
	// DataSources are the data sources by address "type.name" (without the "data." prefix).
	DataSources map[string]*Resource
	// Calls are the child module calls by name.
	Calls map[string]*ModuleCall
	// Providers are the provider configuration blocks.
	Providers []*hclsyntax.Block
	// RequiredProviders maps a provider's local name to its source and version constraint,
	// from terraform { required_providers { ... } }.
	RequiredProviders map[string]ProviderRequirement
}

// ProviderRequirement is one entry of required_providers.
type ProviderRequirement struct {
	// Source is the registry address, e.g. hashicorp/aws.
	Source string
	// Version is the version constraint, e.g. "~> 6.0".
	Version string
}

// Variable is a declared input variable.
type Variable struct {
	// Name is the variable name.
	Name string
	// Type is the type constraint (cty.DynamicPseudoType when none is declared).
	Type cty.Type
	// Default is the default value; it is cty.NilVal when the variable is required.
	Default cty.Value
	// Validations are the variable's validation blocks, checked when a module is instantiated.
	Validations []Validation
	// Range locates the declaration.
	Range hcl.Range
}

// Validation is one validation block of a variable.
type Validation struct {
	// Condition must evaluate to true for the input to be accepted.
	Condition hcl.Expression
	// ErrorMessage is what terraform reports when the condition is false.
	ErrorMessage string
}

// Resource is a managed resource or data source block.
type Resource struct {
	// Type is the provider resource type, e.g. aws_msk_cluster.
	Type string
	// Name is the local name, e.g. this.
	Name string
	// Body is the block body; nested blocks are reachable through it.
	Body *hclsyntax.Body
}

// Address returns "type.name".
func (r *Resource) Address() string { return r.Type + "." + r.Name }

// Counted reports whether the resource uses count or for_each, i.e. stands for several objects.
func (r *Resource) Counted() bool {
	_, c := r.Body.Attributes["count"]
	_, f := r.Body.Attributes["for_each"]
	return c || f
}

// ModuleCall is a module block.
type ModuleCall struct {
	// Name is the module call name (module.<name>).
	Name string
	// Source is the source argument as written.
	Source string
	// Args are the arguments passed to the child's variables (meta-arguments excluded).
	Args map[string]hcl.Expression
	// Range locates the block.
	Range hcl.Range
}

// isMetaArgument reports whether a module block argument is a meta-argument rather than an
// input variable.
func isMetaArgument(name string) bool {
	switch name {
	case "source", "version", "count", "for_each", "depends_on", "providers":
		return true
	}
	return false
}

// ErrNotFormatted is returned by CheckFormat for files that terraform fmt would rewrite.
var ErrNotFormatted = errors.New("not in canonical terraform fmt layout")

// LoadModule parses every .tf file in dir. It fails on syntax errors, duplicate declarations
// and blocks terraform would reject (a variable default that is not a constant, a module
// without a source), naming the file and line.
func LoadModule(dir string) (*Module, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("load module %s: no .tf files", dir)
	}
	sort.Strings(paths)
	m := &Module{
		Dir:         dir,
		Sources:     map[string][]byte{},
		Variables:   map[string]*Variable{},
		Locals:      map[string]hcl.Expression{},
		Outputs:     map[string]hcl.Expression{},
		Resources:   map[string]*Resource{},
		DataSources: map[string]*Resource{},
		Calls:       map[string]*ModuleCall{},

		RequiredProviders: map[string]ProviderRequirement{},
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("load module %s: %w", dir, err)
		}
		m.Sources[filepath.Base(p)] = src
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %w", p, diags)
		}
		if err := m.addFile(f.Body.(*hclsyntax.Body)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Module) addFile(body *hclsyntax.Body) error {
	if len(body.Attributes) > 0 {
		for _, a := range body.Attributes {
			return fmt.Errorf("%s: unexpected top-level argument %q", a.SrcRange, a.Name)
		}
	}
	for _, b := range body.Blocks {
		switch b.Type {
		case "provider":
			m.Providers = append(m.Providers, b)
		case "terraform":
			if err := m.addSettings(b); err != nil {
				return err
			}
		case "moved", "import", "removed", "check":
			// Settings and refactoring blocks do not change what a module declares.
		case "variable":
			if err := m.addVariable(b); err != nil {
				return err
			}
		case "locals":
			for name, a := range b.Body.Attributes {
				if _, dup := m.Locals[name]; dup {
					return fmt.Errorf("%s: duplicate local value %q", a.SrcRange, name)
				}
				m.Locals[name] = a.Expr
			}
		case "output":
			if len(b.Labels) != 1 {
				return fmt.Errorf("%s: output block needs one label", b.Range())
			}
			v, ok := b.Body.Attributes["value"]
			if !ok {
				return fmt.Errorf("%s: output %q has no value", b.Range(), b.Labels[0])
			}
			if _, dup := m.Outputs[b.Labels[0]]; dup {
				return fmt.Errorf("%s: duplicate output %q", b.Range(), b.Labels[0])
			}
			m.Outputs[b.Labels[0]] = v.Expr
		case "resource", "data":
			if len(b.Labels) != 2 {
				return fmt.Errorf("%s: %s block needs a type and a name", b.Range(), b.Type)
			}
			r := &Resource{Type: b.Labels[0], Name: b.Labels[1], Body: b.Body}
			dst := m.Resources
			if b.Type == "data" {
				dst = m.DataSources
			}
			if _, dup := dst[r.Address()]; dup {
				return fmt.Errorf("%s: duplicate %s %s", b.Range(), b.Type, r.Address())
			}
			dst[r.Address()] = r
		case "module":
			if err := m.addCall(b); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported block type %q", b.Range(), b.Type)
		}
	}
	return nil
}

func (m *Module) addSettings(b *hclsyntax.Block) error {
	for _, rb := range b.Body.Blocks {
		if rb.Type != "required_providers" {
			continue
		}
		for name, a := range rb.Body.Attributes {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() || !v.Type().IsObjectType() {
				return fmt.Errorf("%s: required provider %q must be an object with source and version", a.SrcRange, name)
			}
			var req ProviderRequirement
			for attr, dst := range map[string]*string{"source": &req.Source, "version": &req.Version} {
				if v.Type().HasAttribute(attr) {
					if av := v.GetAttr(attr); av.Type() == cty.String && !av.IsNull() {
						*dst = av.AsString()
					}
				}
			}
			if req.Source == "" || req.Version == "" {
				return fmt.Errorf("%s: required provider %q needs both source and version", a.SrcRange, name)
			}
			m.RequiredProviders[name] = req
		}
	}
	return nil
}

func (m *Module) addVariable(b *hclsyntax.Block) error {
	if len(b.Labels) != 1 {
		return fmt.Errorf("%s: variable block needs one label", b.Range())
	}
	name := b.Labels[0]
	if _, dup := m.Variables[name]; dup {
		return fmt.Errorf("%s: duplicate variable %q", b.Range(), name)
	}
	v := &Variable{Name: name, Type: cty.DynamicPseudoType, Range: b.Range()}
	if a, ok := b.Body.Attributes["type"]; ok {
		ty, diags := typeexpr.TypeConstraint(a.Expr)
		if diags.HasErrors() {
			return fmt.Errorf("variable %q type: %w", name, diags)
		}
		v.Type = ty
	}
	if a, ok := b.Body.Attributes["default"]; ok {
		val, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return fmt.Errorf("variable %q default must be a constant: %w", name, diags)
		}
		conv, err := convertTo(val, v.Type)
		if err != nil {
			return fmt.Errorf("%s: variable %q default: %w", a.SrcRange, name, err)
		}
		v.Default = conv
	}
	for _, vb := range b.Body.Blocks {
		if vb.Type != "validation" {
			continue
		}
		cond, ok := vb.Body.Attributes["condition"]
		if !ok {
			return fmt.Errorf("%s: validation of %q has no condition", vb.Range(), name)
		}
		msg := ""
		if a, ok := vb.Body.Attributes["error_message"]; ok {
			mv, diags := a.Expr.Value(nil)
			if !diags.HasErrors() && mv.Type() == cty.String && mv.IsKnown() && !mv.IsNull() {
				msg = mv.AsString()
			}
		}
		v.Validations = append(v.Validations, Validation{Condition: cond.Expr, ErrorMessage: msg})
	}
	m.Variables[name] = v
	return nil
}

func (m *Module) addCall(b *hclsyntax.Block) error {
	if len(b.Labels) != 1 {
		return fmt.Errorf("%s: module block needs one label", b.Range())
	}
	c := &ModuleCall{Name: b.Labels[0], Args: map[string]hcl.Expression{}, Range: b.Range()}
	src, ok := b.Body.Attributes["source"]
	if !ok {
		return fmt.Errorf("%s: module %q has no source", b.Range(), c.Name)
	}
	sv, diags := src.Expr.Value(nil)
	if diags.HasErrors() || sv.Type() != cty.String || sv.IsNull() {
		return fmt.Errorf("%s: module %q source must be a literal string", src.SrcRange, c.Name)
	}
	c.Source = sv.AsString()
	for name, a := range b.Body.Attributes {
		if !isMetaArgument(name) {
			c.Args[name] = a.Expr
		}
	}
	if _, dup := m.Calls[c.Name]; dup {
		return fmt.Errorf("%s: duplicate module %q", b.Range(), c.Name)
	}
	m.Calls[c.Name] = c
	return nil
}

// CheckFormat reports every file of the module whose bytes differ from what hclwrite.Format —
// the formatter terraform fmt uses — produces. The error lists the files; nothing is rewritten.
func (m *Module) CheckFormat() error {
	var bad []string
	for _, name := range sortedKeys(m.Sources) {
		src := m.Sources[name]
		if !bytes.Equal(hclwrite.Format(src), src) {
			bad = append(bad, filepath.Join(m.Dir, name))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s (run terraform fmt)", ErrNotFormatted, strings.Join(bad, ", "))
	}
	return nil
}

// Resource returns the managed resource at address "type.name".
func (m *Module) Resource(addr string) (*Resource, error) {
	r, ok := m.Resources[addr]
	if !ok {
		return nil, fmt.Errorf("module %s declares no resource %s", m.Dir, addr)
	}
	return r, nil
}

// ResourcesOfType returns the managed resources of one type, sorted by name.
func (m *Module) ResourcesOfType(typ string) []*Resource {
	var out []*Resource
	for _, r := range m.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CallDir resolves a local module call's source ("./" or "../") against the module directory.
// Registry and git sources are rejected: every module here is vendored in the repository.
func (m *Module) CallDir(name string) (string, error) {
	c, ok := m.Calls[name]
	if !ok {
		return "", fmt.Errorf("module %s has no module call %q", m.Dir, name)
	}
	if !strings.HasPrefix(c.Source, "./") && !strings.HasPrefix(c.Source, "../") {
		return "", fmt.Errorf("%s: module %q source %q is not a local path", c.Range, name, c.Source)
	}
	return filepath.Join(m.Dir, filepath.FromSlash(c.Source)), nil
}

// Block returns the single nested block reached by following the block types in path, e.g.
// Block("client_authentication", "sasl"). It fails when a step is missing or repeated.
func (r *Resource) Block(path ...string) (*hclsyntax.Body, error) {
	body := r.Body
	for i, typ := range path {
		var found *hclsyntax.Block
		for _, b := range body.Blocks {
			if b.Type != typ {
				continue
			}
			if found != nil {
				return nil, fmt.Errorf("%s: more than one %q block under %s", b.Range(), typ, strings.Join(path[:i], "."))
			}
			found = b
		}
		if found == nil {
			return nil, fmt.Errorf("%s has no %q block", r.Address(), strings.Join(path[:i+1], "."))
		}
		body = found.Body
	}
	return body, nil
}

// Expr returns the expression of the attribute at path: the last element names the attribute,
// the ones before it the nested blocks that hold it.
func (r *Resource) Expr(path ...string) (hcl.Expression, error) {
	if len(path) == 0 {
		return nil, errors.New("empty attribute path")
	}
	body, err := r.Block(path[:len(path)-1]...)
	if err != nil {
		return nil, err
	}
	a, ok := body.Attributes[path[len(path)-1]]
	if !ok {
		return nil, fmt.Errorf("%s has no attribute %s", r.Address(), strings.Join(path, "."))
	}
	return a.Expr, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
