package dlt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// jsonObject is the library's reading of a value as a JSON object, the reference for
// objectMembers and FieldsInto: nil unless the value, trimmed, is exactly one valid object.
func jsonObject(value []byte) map[string]any {
	t := bytes.TrimSpace(value)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || dec.More() {
		return nil
	}
	return m
}

// checkFieldsInto compares FieldsInto, objectMembers (Decode's Fields) and scanObject
// (DecodeBrief's error fields, DecodeFields' members) with the library's reading of value.
func checkFieldsInto(t *testing.T, value []byte, names []string) {
	t.Helper()
	all := jsonObject(value)
	if got := objectMembers(value); !reflect.DeepEqual(got, all) {
		t.Fatalf("value %q: objectMembers %#v, the library %#v", value, got, all)
	}
	// What DecodeBrief and DecodeFields read: the error fields, and the members named.
	ef, fields, valid := scanObject(value, names)
	if want := mapErrorFields(all); valid != (all != nil) || ef != want {
		t.Fatalf("value %q: scanObject read %+v (valid %v), the library %+v", value, ef, valid, want)
	}
	if valid {
		for _, n := range names {
			want, has := all[n]
			got, gotHas := fields[n]
			if has != gotHas || !reflect.DeepEqual(got, want) {
				t.Fatalf("value %q: scanObject read %s as %#v (%v), the library %#v (%v)", value, n, got, gotHas, want, has)
			}
		}
	}
	got := map[string]any{"stale": 1}
	clear(got)
	ok := FieldsInto(got, value, names)
	if ok != (all != nil) {
		t.Fatalf("value %q: FieldsInto says valid %v, the library %v", value, ok, all != nil)
	}
	if !ok {
		return
	}
	want := map[string]any{}
	for _, n := range names {
		if v, has := all[n]; has {
			want[n] = v
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("value %q names %q: FieldsInto %#v, the library %#v", value, names, got, want)
	}
}

// FuzzFieldsInto: FieldsInto and objectMembers read exactly the members the library reads, and
// refuse exactly the values the library refuses, for any value and name.
func FuzzFieldsInto(f *testing.F) {
	f.Add([]byte(`{"orderId":7,"quantity":2.50,"errorCode":"X","n":null}`), "quantity")
	f.Add([]byte(`{"a":1,"a":{"b":[1,2]},"\u0061":"c"}`), "a")
	f.Add([]byte(` {"q":"\xff"} `), "q")
	f.Add([]byte(`{"q":1} {"q":2}`), "q")
	f.Add([]byte(`[1,2]`), "q")
	f.Add([]byte(`{"errorCode":"E","\u0065rrorSource":"s","errorCode":{"x":[1,"\u00e9"]},"q":true,"q":false}`), "errorCode")
	f.Add([]byte("{\"q\":\"\xff\"}"), "q")
	f.Add([]byte(`{"q":"\ud800","\ud83d\ude00":-0.0e+1}`), "\U0001F600")
	f.Add([]byte(`{"q":01}`), "q")
	f.Add([]byte(`{"q":1.}`), "q")
	f.Add([]byte("{\"q\":\"a\tb\"}"), "q")
	f.Add([]byte("\v{\"q\":1}\u00a0"), "q")
	f.Add([]byte(`{"q":[1,]}`), "q")
	f.Add([]byte(`{"q":tru}`), "q")
	f.Add([]byte(`{"é":1,"\u00e9":2}`), "é")
	f.Fuzz(func(t *testing.T, value []byte, name string) {
		checkFieldsInto(t, value, []string{name, "orderId", "errorCode"})
	})
}

// TestFieldsIntoMatchesLibrary runs the comparison (objectMembers too) on random objects, valid and damaged:
// nested values, escapes, duplicate members, a member named like metadata, and nesting at
// the library's limit.
func TestFieldsIntoMatchesLibrary(t *testing.T) {
	names := []string{"quantity", "errorCode", "orderId", "é", "a\"b", "", "quantity", "timestamp"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		v := randomObject(rng, 0)
		checkFieldsInto(t, []byte(v), names)
		// Damaged: a byte changed, dropped or doubled, or the text cut.
		b := []byte(v)
		switch k := rng.IntN(len(b)); rng.IntN(4) {
		case 0:
			const bytes = "{}[]\",:\\ 0-.eE+tfnu\x00\x1f\xff"
			b[k] = bytes[rng.IntN(len(bytes))]
		case 1:
			b = append(b[:k], b[k+1:]...)
		case 2:
			b = append(b[:k+1], b[k:]...)
		default:
			b = b[:k]
		}
		checkFieldsInto(t, b, names)
		if t.Failed() {
			t.Fatalf("round %d", i)
		}
	}
	for _, depth := range []int{9998, 9999, 10000, 10001} {
		for _, open := range []string{"[", `{"x":`} {
			closing := map[string]string{"[": "]", `{"x":`: "}"}[open]
			v := `{"quantity":1,"a":` + strings.Repeat(open, depth-1) + "1" + strings.Repeat(closing, depth-1) + "}"
			checkFieldsInto(t, []byte(v), names)
		}
	}
	many := make([]string, 40) // many names, some repeated

	for i := range many {
		many[i] = fmt.Sprint("f", i%30)
	}
	checkFieldsInto(t, []byte(`{"f1":1,"f16":"x","f1":2}`), many)
}

// randomObject returns a JSON object of random members, some named like those the test looks
// for, some with escapes, repeated, nested.
func randomObject(rng *rand.Rand, depth int) string {
	var b strings.Builder
	b.WriteString(ws(rng) + "{")
	for i := range rng.IntN(6) {
		if i > 0 {
			b.WriteString(ws(rng) + ",")
		}
		b.WriteString(ws(rng) + randomString(rng, []string{"quantity", "errorCode", "orderId", "é", `\u0071uantity`, `a\"b`, "", "x",
			"errorSource", "errorMessage", "timestamp", `error\u0043ode`}) + ws(rng) + ":" + ws(rng))
		b.WriteString(randomValue(rng, depth+1))
	}
	b.WriteString(ws(rng) + "}" + ws(rng))
	return b.String()
}

func randomValue(rng *rand.Rand, depth int) string {
	k := rng.IntN(9)
	if depth > 3 && k >= 7 {
		k = rng.IntN(7)
	}
	switch k {
	case 0:
		return []string{"0", "-0", "12", "-3.25", "1e3", "2.5E-2", "1E+2", "123456789012345678901234567890", "0.1"}[rng.IntN(9)]
	case 1, 2:
		return randomString(rng, []string{"PG_TIMEOUT", "x", "", `caf\u00e9`, "café", `\"q\\`, `\ud800`, `\ud83d\ude00`, "\xff\xfe", `\/\b\f\n\r\t`})
	case 3:
		return "true"
	case 4:
		return "false"
	case 5:
		return "null"
	case 6:
		return fmt.Sprint(rng.IntN(10))
	case 7:
		return randomObject(rng, depth)
	default:
		var b strings.Builder
		b.WriteString("[")
		for i := range rng.IntN(4) {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(ws(rng) + randomValue(rng, depth+1) + ws(rng))
		}
		return b.String() + "]"
	}
}

func randomString(rng *rand.Rand, from []string) string { return `"` + from[rng.IntN(len(from))] + `"` }

func ws(rng *rand.Rand) string {
	if rng.IntN(4) > 0 {
		return ""
	}
	return []string{" ", "\n", "\t", "\r", "  "}[rng.IntN(5)]
}
