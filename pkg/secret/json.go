package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaskJSON returns doc, compacted, with the string and number values of fields named in f
// replaced by their masks at any depth, and whether anything was masked. It keeps the
// document's field order, which matters when an operator compares a record with a service's
// log. A document that is not valid JSON is an error.
func (f Fields) MaskJSON(doc []byte) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out bytes.Buffer
	type frame struct {
		object   bool
		n        int  // tokens written in this container
		wantKey  bool // inside an object, the next token is a key
		maskNext bool // the value after this key is secret
	}
	var stack []frame
	changed := false
	writeScalar := func(b []byte) { out.Write(b) }
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, false, err
		}
		// separators before the token
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if d, ok := tok.(json.Delim); !ok || (d != '}' && d != ']') {
				if top.object {
					if top.wantKey && top.n > 0 {
						out.WriteByte(',')
					}
					if !top.wantKey {
						out.WriteByte(':')
					}
				} else if top.n > 0 {
					out.WriteByte(',')
				}
			}
		}
		var masked bool
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.object && !top.wantKey {
				masked = top.maskNext
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				out.WriteByte(byte(t))
				stack = append(stack, frame{object: t == '{', wantKey: t == '{'})
				continue
			default:
				out.WriteByte(byte(t))
				stack = stack[:len(stack)-1]
			}
		case string:
			if len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey {
				b, _ := json.Marshal(t)
				writeScalar(b)
				top := &stack[len(stack)-1]
				top.maskNext = f.Has(t)
				top.wantKey = false
				top.n++
				continue
			}
			if masked {
				t, changed = Mask(t), true
			}
			b, _ := json.Marshal(t)
			writeScalar(b)
		case json.Number:
			if masked {
				b, _ := json.Marshal(Mask(t.String()))
				writeScalar(b)
				changed = true
			} else {
				writeScalar([]byte(t.String()))
			}
		case bool:
			writeScalar([]byte(fmt.Sprint(t)))
		case nil:
			writeScalar([]byte("null"))
		}
		// a value completed: the container expects a key (object) or the next element (array)
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.object {
				top.wantKey = true
				top.maskNext = false
			} else {
				top.n++
			}
		}
	}
	return out.Bytes(), changed, nil
}
