package platform

import (
	"fmt"
	"math/big"
	"net/netip"

	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"github.com/zclconf/go-cty/cty/gocty"
)

// Functions returns the subset of terraform's built-in functions that the modules here use, with
// terraform's names and semantics. A module calling anything else fails to evaluate with HCL's
// "Call to unknown function" error, which is the point: a typo is caught before a plan.
func Functions() map[string]function.Function {
	return map[string]function.Function{
		"alltrue":    allTrueFunc(true),
		"anytrue":    allTrueFunc(false),
		"can":        tryfunc.CanFunc,
		"cidrsubnet": cidrSubnetFunc(),
		"coalesce":   stdlib.CoalesceFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"distinct":   stdlib.DistinctFunc,
		"element":    stdlib.ElementFunc,
		"flatten":    stdlib.FlattenFunc,
		"format":     stdlib.FormatFunc,
		"join":       stdlib.JoinFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"keys":       stdlib.KeysFunc,
		"length":     stdlib.LengthFunc,
		"lookup":     stdlib.LookupFunc,
		"lower":      stdlib.LowerFunc,
		"max":        stdlib.MaxFunc,
		"merge":      stdlib.MergeFunc,
		"min":        stdlib.MinFunc,
		"replace":    stdlib.ReplaceFunc,
		"slice":      stdlib.SliceFunc,
		"split":      stdlib.SplitFunc,
		"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":      stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"try":        tryfunc.TryFunc,
		"upper":      stdlib.UpperFunc,
		"values":     stdlib.ValuesFunc,
	}
}

// allTrueFunc implements alltrue (all=true) and anytrue (all=false) over a list of bools.
func allTrueFunc(all bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			list := args[0]
			if !list.IsWhollyKnown() {
				return cty.UnknownVal(cty.Bool), nil
			}
			for it := list.ElementIterator(); it.Next(); {
				_, v := it.Element()
				if v.IsNull() {
					return cty.False, nil
				}
				if v.True() != all {
					return cty.BoolVal(!all), nil
				}
			}
			return cty.BoolVal(all), nil
		},
	})
}

// cidrSubnetFunc implements cidrsubnet(prefix, newbits, netnum) for IPv4 and IPv6.
func cidrSubnetFunc() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{
			{Name: "prefix", Type: cty.String},
			{Name: "newbits", Type: cty.Number},
			{Name: "netnum", Type: cty.Number},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			var newbits, netnum int
			if err := gocty.FromCtyValue(args[1], &newbits); err != nil {
				return cty.UnknownVal(cty.String), function.NewArgError(1, err)
			}
			if err := gocty.FromCtyValue(args[2], &netnum); err != nil {
				return cty.UnknownVal(cty.String), function.NewArgError(2, err)
			}
			s, err := CIDRSubnet(args[0].AsString(), newbits, netnum)
			if err != nil {
				return cty.UnknownVal(cty.String), err
			}
			return cty.StringVal(s), nil
		},
	})
}

// CIDRSubnet computes terraform's cidrsubnet: the netnum-th subnet of prefix that is newbits
// longer. It rejects prefixes that do not parse, lengths past the address size and netnum values
// that do not fit in newbits.
func CIDRSubnet(prefix string, newbits, netnum int) (string, error) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return "", fmt.Errorf("invalid CIDR prefix %q: %w", prefix, err)
	}
	size := p.Addr().BitLen()
	newLen := p.Bits() + newbits
	if newbits < 0 || newLen > size {
		return "", fmt.Errorf("cannot extend prefix %s by %d bits: only %d bits in the address", prefix, newbits, size)
	}
	if netnum < 0 || big.NewInt(int64(netnum)).BitLen() > newbits {
		return "", fmt.Errorf("netnum %d does not fit in %d new bits of %s", netnum, newbits, prefix)
	}
	base := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	base.Or(base, new(big.Int).Lsh(big.NewInt(int64(netnum)), uint(size-newLen)))
	buf := make([]byte, size/8)
	base.FillBytes(buf)
	addr, ok := netip.AddrFromSlice(buf)
	if !ok {
		return "", fmt.Errorf("cidrsubnet(%s, %d, %d): address out of range", prefix, newbits, netnum)
	}
	return netip.PrefixFrom(addr, newLen).String(), nil
}
