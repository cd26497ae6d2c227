package chart

// Manifest is the decoded output of one render, in template-file order.
type Manifest struct {
	Objects []Object
}

// Of returns the typed values of every object of type T in m, for example
// chart.Of[*appsv1.Deployment](m).
func Of[T any](m *Manifest) []T {
	var out []T
	for _, o := range m.Objects {
		if v, ok := o.Value.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// Find returns the object of the given kind and name, or false.
func (m *Manifest) Find(kind, name string) (Object, bool) {
	for _, o := range m.Objects {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return Object{}, false
}
