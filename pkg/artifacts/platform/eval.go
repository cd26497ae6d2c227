package platform

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// Instance is a module with its input variables bound, able to evaluate expressions the way a
// terraform plan would before anything exists: values written in the configuration (variables,
// locals, literal resource arguments, child module outputs built from those) are known, and
// anything only the provider can compute (IDs, ARNs, data sources) is unknown.
type Instance struct {
	// Module is the module being evaluated.
	Module *Module
	// Path names the instance for messages: "envs/prod" or "envs/prod/module.msk".
	Path string

	vars      map[string]cty.Value
	locals    map[string]cty.Value
	children  map[string]*Instance
	childErrs map[string]error
	active    map[string]bool
	funcs     map[string]function.Function
}

// Instantiate binds inputs to the module's variables. Unknown inputs, missing required inputs,
// inputs that do not convert to the declared type and inputs that fail a validation block are
// errors, as they are for terraform.
func (m *Module) Instantiate(path string, inputs map[string]cty.Value) (*Instance, error) {
	in := &Instance{
		Module:    m,
		Path:      path,
		vars:      map[string]cty.Value{},
		locals:    map[string]cty.Value{},
		children:  map[string]*Instance{},
		childErrs: map[string]error{},
		active:    map[string]bool{},
		funcs:     Functions(),
	}
	for name := range inputs {
		if _, ok := m.Variables[name]; !ok {
			return nil, fmt.Errorf("%s: unsupported argument %q: the module declares no such variable", path, name)
		}
	}
	for _, name := range sortedKeys(m.Variables) {
		v := m.Variables[name]
		val, given := inputs[name]
		switch {
		case given && !val.IsNull():
			conv, err := convertTo(val, v.Type)
			if err != nil {
				return nil, fmt.Errorf("%s: variable %q: %w", path, name, err)
			}
			val = conv
		case v.Default != cty.NilVal:
			val = v.Default
		default:
			return nil, fmt.Errorf("%s: required variable %q is not set", path, name)
		}
		in.vars[name] = val
	}
	for _, name := range sortedKeys(m.Variables) {
		for _, vd := range m.Variables[name].Validations {
			ok, err := in.EvalBool(vd.Condition)
			if err != nil {
				return nil, fmt.Errorf("%s: validation of variable %q: %w", path, name, err)
			}
			if ok != nil && !*ok {
				return nil, fmt.Errorf("%s: invalid value for variable %q: %s", path, name, vd.ErrorMessage)
			}
		}
	}
	return in, nil
}

// Var returns the bound value of an input variable.
func (in *Instance) Var(name string) (cty.Value, error) {
	v, ok := in.vars[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: no variable %q", in.Path, name)
	}
	return v, nil
}

// Child instantiates the module call name with its arguments evaluated in this instance. The
// child is loaded from the call's local source directory and cached.
func (in *Instance) Child(name string) (*Instance, error) {
	if c, ok := in.children[name]; ok {
		return c, nil
	}
	if err, ok := in.childErrs[name]; ok {
		return nil, err
	}
	dir, err := in.Module.CallDir(name)
	if err != nil {
		return nil, err
	}
	key := "module." + name
	if in.active[key] {
		return nil, fmt.Errorf("%s: cycle through %s", in.Path, key)
	}
	in.active[key] = true
	defer delete(in.active, key)

	child, err := LoadModule(dir)
	if err != nil {
		return nil, err
	}
	call := in.Module.Calls[name]
	inputs := map[string]cty.Value{}
	for _, arg := range sortedKeys(call.Args) {
		v, err := in.Eval(call.Args[arg])
		if err != nil {
			return nil, fmt.Errorf("%s: module %q argument %q: %w", in.Path, name, arg, err)
		}
		inputs[arg] = v
	}
	ci, err := child.Instantiate(in.Path+"/"+key, inputs)
	if err != nil {
		in.childErrs[name] = err
		return nil, err
	}
	in.children[name] = ci
	return ci, nil
}

// Local evaluates a local value.
func (in *Instance) Local(name string) (cty.Value, error) {
	if v, ok := in.locals[name]; ok {
		return v, nil
	}
	expr, ok := in.Module.Locals[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: no local value %q", in.Path, name)
	}
	key := "local." + name
	if in.active[key] {
		return cty.NilVal, fmt.Errorf("%s: local value %q refers to itself", in.Path, name)
	}
	in.active[key] = true
	defer delete(in.active, key)
	v, err := in.Eval(expr)
	if err != nil {
		return cty.NilVal, fmt.Errorf("local %q: %w", name, err)
	}
	in.locals[name] = v
	return v, nil
}

// Output evaluates an output value.
func (in *Instance) Output(name string) (cty.Value, error) {
	expr, ok := in.Module.Outputs[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s: module declares no output %q", in.Path, name)
	}
	key := "output." + name
	if in.active[key] {
		return cty.NilVal, fmt.Errorf("%s: output %q refers to itself", in.Path, name)
	}
	in.active[key] = true
	defer delete(in.active, key)
	return in.Eval(expr)
}

// Attr evaluates the attribute at path (nested block types, then the attribute name) of the
// resource at addr. For a counted resource, count.index and each.key are unknown, so
// per-instance parts of the value are unknown too; use AttrAt for one instance.
func (in *Instance) Attr(addr string, path ...string) (cty.Value, error) {
	return in.attr(addr, cty.DynamicVal, path)
}

// AttrAt is Attr for the instance of a count resource with count.index = index.
func (in *Instance) AttrAt(addr string, index int, path ...string) (cty.Value, error) {
	return in.attr(addr, cty.NumberIntVal(int64(index)), path)
}

// AttrEach is Attr for the instance of a for_each resource with each.key = key and each.value
// the matching element of the evaluated for_each.
func (in *Instance) AttrEach(addr, key string, path ...string) (cty.Value, error) {
	r, err := in.Module.Resource(addr)
	if err != nil {
		return cty.NilVal, err
	}
	fe, ok := r.Body.Attributes["for_each"]
	if !ok {
		return cty.NilVal, fmt.Errorf("%s %s has no for_each", in.Path, addr)
	}
	all, err := in.Eval(fe.Expr)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s %s for_each: %w", in.Path, addr, err)
	}
	if !all.IsWhollyKnown() || all.IsNull() {
		return cty.NilVal, fmt.Errorf("%s %s for_each is not known before apply", in.Path, addr)
	}
	var value cty.Value
	switch ty := all.Type(); {
	case ty.IsObjectType() && ty.HasAttribute(key):
		value = all.GetAttr(key)
	case ty.IsMapType() && all.HasIndex(cty.StringVal(key)).True():
		value = all.Index(cty.StringVal(key))
	case ty.IsSetType() && all.HasElement(cty.StringVal(key)).True():
		value = cty.StringVal(key)
	default:
		return cty.NilVal, fmt.Errorf("%s %s has no instance %q", in.Path, addr, key)
	}
	expr, err := r.Expr(path...)
	if err != nil {
		return cty.NilVal, err
	}
	each := cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(key), "value": value})
	v, err := in.evalScoped(expr, scope{index: cty.DynamicVal, each: each})
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s %s[%q].%s: %w", in.Path, addr, key, strings.Join(path, "."), err)
	}
	return v, nil
}

func (in *Instance) attr(addr string, index cty.Value, path []string) (cty.Value, error) {
	r, err := in.Module.Resource(addr)
	if err != nil {
		return cty.NilVal, err
	}
	expr, err := r.Expr(path...)
	if err != nil {
		return cty.NilVal, err
	}
	v, err := in.evalWith(expr, index)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s %s.%s: %w", in.Path, addr, strings.Join(path, "."), err)
	}
	return v, nil
}

// Count evaluates the count argument of a resource and requires a known whole number.
func (in *Instance) Count(addr string) (int, error) {
	v, err := in.Attr(addr, "count")
	if err != nil {
		return 0, err
	}
	return knownInt(v)
}

// Eval evaluates an expression of this module.
func (in *Instance) Eval(expr hcl.Expression) (cty.Value, error) {
	return in.evalWith(expr, cty.DynamicVal)
}

// evalIter evaluates an expression inside dynamic blocks, whose iterator names stand for
// values only known per element.
func (in *Instance) evalIter(expr hcl.Expression, iterators map[string]bool) (cty.Value, error) {
	return in.evalScoped(expr, scope{index: cty.DynamicVal, iterators: iterators})
}

// scope holds the per-instance names of an evaluation: count.index, each and the iterators of
// enclosing dynamic blocks. Zero values stand for "unknown".
type scope struct {
	index     cty.Value
	each      cty.Value
	iterators map[string]bool
}

// EvalBool evaluates a condition; it returns nil for a condition that is unknown until apply.
func (in *Instance) EvalBool(expr hcl.Expression) (*bool, error) {
	v, err := in.Eval(expr)
	if err != nil {
		return nil, err
	}
	if !v.IsWhollyKnown() {
		return nil, nil
	}
	v, err = convert.Convert(v, cty.Bool)
	if err != nil || v.IsNull() {
		return nil, fmt.Errorf("condition is not a bool")
	}
	b := v.True()
	return &b, nil
}

func (in *Instance) evalWith(expr hcl.Expression, index cty.Value) (cty.Value, error) {
	return in.evalScoped(expr, scope{index: index})
}

func (in *Instance) evalScoped(expr hcl.Expression, sc scope) (cty.Value, error) {
	root := newTree()
	for _, t := range expr.Variables() {
		if sc.iterators[t.RootName()] {
			root.set(cty.DynamicVal, t.RootName())
			continue
		}
		if t.RootName() == "each" && sc.each != cty.NilVal {
			root.set(sc.each, "each")
			continue
		}
		if err := in.bind(root, t); err != nil {
			return cty.NilVal, err
		}
	}
	vars := root.object().AsValueMap()
	if vars == nil {
		vars = map[string]cty.Value{}
	}
	index := sc.index
	if index == cty.NilVal {
		index = cty.DynamicVal
	}
	vars["count"] = cty.ObjectVal(map[string]cty.Value{"index": index})
	ctx := &hcl.EvalContext{Variables: vars, Functions: in.funcs}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	return v, nil
}

// bind resolves one reference of an expression into the tree of known and unknown values.
func (in *Instance) bind(root *tree, t hcl.Traversal) error {
	name := t.RootName()
	step := func(i int) (string, bool) {
		if len(t) <= i {
			return "", false
		}
		a, ok := t[i].(hcl.TraverseAttr)
		return a.Name, ok
	}
	switch name {
	case "var":
		n, ok := step(1)
		if !ok {
			return fmt.Errorf("%s: reference to var without a name", t.SourceRange())
		}
		v, err := in.Var(n)
		if err != nil {
			return fmt.Errorf("%s: %w", t.SourceRange(), err)
		}
		root.set(v, "var", n)
	case "local":
		n, ok := step(1)
		if !ok {
			return fmt.Errorf("%s: reference to local without a name", t.SourceRange())
		}
		v, err := in.Local(n)
		if err != nil {
			return fmt.Errorf("%s: %w", t.SourceRange(), err)
		}
		root.set(v, "local", n)
	case "module":
		call, ok := step(1)
		if !ok {
			return fmt.Errorf("%s: reference to module without a name", t.SourceRange())
		}
		out, ok := step(2)
		if !ok {
			return fmt.Errorf("%s: module.%s must be followed by an output name", t.SourceRange(), call)
		}
		if _, exists := in.Module.Calls[call]; !exists {
			return fmt.Errorf("%s: reference to undeclared module %q", t.SourceRange(), call)
		}
		child, err := in.Child(call)
		if err != nil {
			if in.active["module."+call] {
				return err // a cycle, not an invalid child
			}
			// The child's own error is reported once, by Validate or by the caller of
			// Child; here its outputs are simply not known.
			root.set(cty.DynamicVal, "module", call, out)
			return nil
		}
		v, err := child.Output(out)
		if err != nil {
			return fmt.Errorf("%s: %w", t.SourceRange(), err)
		}
		root.set(v, "module", call, out)
	case "data":
		typ, _ := step(1)
		n, _ := step(2)
		if _, ok := in.Module.DataSources[typ+"."+n]; !ok {
			return fmt.Errorf("%s: reference to undeclared data source %s.%s", t.SourceRange(), typ, n)
		}
		root.set(cty.DynamicVal, "data", typ, n)
	case "count", "each", "path", "terraform", "self":
		// count is bound per evaluation; the others are only known during a real plan.
		if name != "count" {
			root.set(cty.DynamicVal, name)
		}
	default:
		// A managed resource: type.name[.attribute].
		n, ok := step(1)
		if !ok {
			return fmt.Errorf("%s: unknown reference %q", t.SourceRange(), name)
		}
		r, exists := in.Module.Resources[name+"."+n]
		if !exists {
			return fmt.Errorf("%s: reference to undeclared resource %s.%s", t.SourceRange(), name, n)
		}
		if r.Counted() {
			v, err := in.instances(r)
			if err != nil {
				return fmt.Errorf("%s: %w", t.SourceRange(), err)
			}
			root.set(v, name, n)
			return nil
		}
		attr, hasAttr := step(2)
		if !hasAttr {
			root.set(cty.DynamicVal, name, n)
			return nil
		}
		v := cty.DynamicVal
		if a, ok := r.Body.Attributes[attr]; ok {
			key := "resource." + r.Address() + "." + attr
			if in.active[key] {
				return fmt.Errorf("%s: %s.%s refers to itself", t.SourceRange(), r.Address(), attr)
			}
			in.active[key] = true
			val, err := in.Eval(a.Expr)
			delete(in.active, key)
			if err != nil {
				return err
			}
			v = val
		}
		root.set(v, name, n, attr)
	}
	return nil
}

// instances stands for the objects of a count or for_each resource: a tuple with one unknown
// element per index when count is known, an object with one unknown attribute per key when the
// for_each keys are known, and a wholly unknown value otherwise. Lengths and keys therefore stay
// known through splats and for expressions, and an out-of-range index is an error.
func (in *Instance) instances(r *Resource) (cty.Value, error) {
	key := "instances." + r.Address()
	if in.active[key] {
		return cty.NilVal, fmt.Errorf("%s: count or for_each refers to itself", r.Address())
	}
	in.active[key] = true
	defer delete(in.active, key)
	if a, ok := r.Body.Attributes["count"]; ok {
		v, err := in.Eval(a.Expr)
		if err != nil {
			return cty.NilVal, fmt.Errorf("%s count: %w", r.Address(), err)
		}
		if !v.IsWhollyKnown() {
			return cty.DynamicVal, nil
		}
		n, err := knownInt(v)
		if err != nil {
			return cty.NilVal, fmt.Errorf("%s count: %w", r.Address(), err)
		}
		if n < 0 {
			return cty.NilVal, fmt.Errorf("%s count: %d is negative", r.Address(), n)
		}
		if n == 0 {
			return cty.EmptyTupleVal, nil
		}
		elems := make([]cty.Value, n)
		for i := range elems {
			elems[i] = cty.DynamicVal
		}
		return cty.TupleVal(elems), nil
	}
	a := r.Body.Attributes["for_each"]
	v, err := in.Eval(a.Expr)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s for_each: %w", r.Address(), err)
	}
	if !v.IsWhollyKnown() || v.IsNull() {
		return cty.DynamicVal, nil
	}
	keys := map[string]cty.Value{}
	ty := v.Type()
	switch {
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, _ := it.Element()
			keys[k.AsString()] = cty.DynamicVal
		}
	case ty.IsSetType() && ty.ElementType() == cty.String:
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			keys[e.AsString()] = cty.DynamicVal
		}
	default:
		return cty.NilVal, fmt.Errorf("%s for_each: needs a map or a set of strings, got %s", r.Address(), ty.FriendlyName())
	}
	return cty.ObjectVal(keys), nil
}

// Validate evaluates every expression of the instance — provider settings, locals, outputs,
// resource and data source arguments including nested and dynamic blocks, lifecycle
// preconditions — and then instantiates and validates every child module. It reports references
// to undeclared variables, locals, resources, data sources, modules and outputs, unknown
// functions, type errors in values known before apply, invalid module inputs and preconditions
// that are known to fail: the part of `terraform validate` that needs no provider schema.
func (in *Instance) Validate() []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range in.Module.Providers {
		errs = append(errs, in.validateBody(p.Body, nil)...)
	}
	for _, name := range sortedKeys(in.Module.Locals) {
		_, err := in.Local(name)
		add(err)
	}
	for _, name := range sortedKeys(in.Module.Outputs) {
		_, err := in.Output(name)
		if err != nil {
			add(fmt.Errorf("%s: output %q: %w", in.Path, name, err))
		}
	}
	for _, set := range []map[string]*Resource{in.Module.DataSources, in.Module.Resources} {
		for _, addr := range sortedKeys(set) {
			for _, err := range in.validateBody(set[addr].Body, nil) {
				add(fmt.Errorf("%s %s: %w", in.Path, addr, err))
			}
		}
	}
	for _, name := range sortedKeys(in.Module.Calls) {
		child, err := in.Child(name)
		if err != nil {
			add(err)
			continue
		}
		errs = append(errs, child.Validate()...)
	}
	return errs
}

func (in *Instance) validateBody(body *hclsyntax.Body, iterators map[string]bool) []error {
	var errs []error
	for _, name := range sortedKeys(body.Attributes) {
		if name == "depends_on" {
			continue // a list of addresses, not a value
		}
		if _, err := in.evalIter(body.Attributes[name].Expr, iterators); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	for _, b := range body.Blocks {
		switch b.Type {
		case "lifecycle":
			for _, cb := range b.Body.Blocks {
				if cb.Type != "precondition" && cb.Type != "postcondition" {
					continue
				}
				cond, ok := cb.Body.Attributes["condition"]
				if !ok {
					errs = append(errs, fmt.Errorf("%s: %s without condition", cb.Range(), cb.Type))
					continue
				}
				if cb.Type == "postcondition" {
					continue // refers to self, known only after apply
				}
				v, err := in.evalIter(cond.Expr, iterators)
				if err != nil {
					errs = append(errs, fmt.Errorf("precondition: %w", err))
					continue
				}
				if v.IsWhollyKnown() && !v.IsNull() && v.Type() == cty.Bool && v.False() {
					msg := ""
					if a, ok := cb.Body.Attributes["error_message"]; ok {
						if mv, diags := a.Expr.Value(nil); !diags.HasErrors() && mv.Type() == cty.String {
							msg = mv.AsString()
						}
					}
					errs = append(errs, fmt.Errorf("%s: precondition failed: %s", cb.Range(), msg))
				}
			}
		case "dynamic":
			if len(b.Labels) != 1 {
				errs = append(errs, fmt.Errorf("%s: dynamic block needs one label", b.Range()))
				continue
			}
			iter := b.Labels[0]
			if a, ok := b.Body.Attributes["iterator"]; ok {
				iter = hcl.ExprAsKeyword(a.Expr)
			}
			if a, ok := b.Body.Attributes["for_each"]; ok {
				if _, err := in.evalIter(a.Expr, iterators); err != nil {
					errs = append(errs, fmt.Errorf("dynamic %q for_each: %w", b.Labels[0], err))
				}
			}
			inner := map[string]bool{iter: true}
			for k := range iterators {
				inner[k] = true
			}
			for _, cb := range b.Body.Blocks {
				if cb.Type == "content" {
					errs = append(errs, in.validateBody(cb.Body, inner)...)
				}
			}
		default:
			errs = append(errs, in.validateBody(b.Body, iterators)...)
		}
	}
	return errs
}

// tree assembles nested object values from the references an expression makes.
type tree struct {
	val      *cty.Value
	children map[string]*tree
}

func newTree() *tree { return &tree{children: map[string]*tree{}} }

func (t *tree) set(v cty.Value, path ...string) {
	node := t
	for _, p := range path {
		if node.val != nil {
			return // an ancestor is already a whole value
		}
		next, ok := node.children[p]
		if !ok {
			next = newTree()
			node.children[p] = next
		}
		node = next
	}
	node.val = &v
	node.children = map[string]*tree{}
}

func (t *tree) object() cty.Value {
	if t.val != nil {
		return *t.val
	}
	attrs := make(map[string]cty.Value, len(t.children))
	for k, c := range t.children {
		attrs[k] = c.object()
	}
	return cty.ObjectVal(attrs)
}

func convertTo(v cty.Value, ty cty.Type) (cty.Value, error) {
	if ty == cty.DynamicPseudoType {
		return v, nil
	}
	out, err := convert.Convert(v, ty)
	if err != nil {
		var pe cty.PathError
		if errors.As(err, &pe) && len(pe.Path) > 0 {
			return cty.NilVal, fmt.Errorf("want %s: at %s: %w", ty.FriendlyName(), formatPath(pe.Path), err)
		}
		return cty.NilVal, fmt.Errorf("want %s: %w", ty.FriendlyName(), err)
	}
	return out, nil
}

// formatPath renders a cty path the way it would be written in HCL: .attr and [key].
func formatPath(p cty.Path) string {
	var b strings.Builder
	for _, step := range p {
		switch s := step.(type) {
		case cty.GetAttrStep:
			b.WriteString("." + s.Name)
		case cty.IndexStep:
			if s.Key.Type() == cty.String {
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			} else if s.Key.Type() == cty.Number {
				b.WriteString("[" + s.Key.AsBigFloat().String() + "]")
			} else {
				b.WriteString("[?]")
			}
		}
	}
	return b.String()
}

func knownInt(v cty.Value) (int, error) {
	if !v.IsWhollyKnown() || v.IsNull() {
		return 0, fmt.Errorf("value is not known before apply")
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		return 0, fmt.Errorf("value is not a number: %w", err)
	}
	bf := n.AsBigFloat()
	i, acc := bf.Int64()
	if !bf.IsInt() || acc != 0 {
		return 0, fmt.Errorf("value %s is not a whole number", bf.String())
	}
	return int(i), nil
}

// LoadEnv loads and instantiates a root module (an environment such as gitops/terraform/envs/prod)
// with the given values for its variables, the way `terraform plan -var ...` would.
func LoadEnv(dir string, vars map[string]cty.Value) (*Instance, error) {
	m, err := LoadModule(dir)
	if err != nil {
		return nil, err
	}
	return m.Instantiate(filepath.ToSlash(dir), vars)
}
