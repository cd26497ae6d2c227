package secret

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"short", "***"},
		{"12345678", "***"},
		{"tgen_20240101abcd", "tgen***"},
		{"tviva20241126123456789abcdefghijkl", "tviva2***"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskJSON(t *testing.T) {
	t.Parallel()
	f := NewFields()
	in := []byte(`{"orderId":7,"paymentKey":"tgen_20240101abcdef","nested":{"payment_key":"tgen_99999999999","token":12345},"lines":[{"secretKey":"test_sk_abcdefghij"}]}`)
	out, masked, err := f.MaskJSON(in)
	if err != nil || !masked {
		t.Fatalf("MaskJSON on valid JSON: masked %v, %v", masked, err)
	}
	for _, leaked := range []string{"tgen_20240101abcdef", "tgen_99999999999", "test_sk_abcdefghij", "12345"} {
		if bytes.Contains(out, []byte(leaked)) {
			t.Errorf("secret %q survived: %s", leaked, out)
		}
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil || v["orderId"].(float64) != 7 {
		t.Fatalf("non-secret field changed or invalid output: %s (%v)", out, err)
	}
	if _, _, err := f.MaskJSON([]byte("not json")); err == nil {
		t.Fatal("MaskJSON accepted invalid JSON")
	}
	// The document's field order is kept.
	if out, _, err := f.MaskJSON([]byte(`{"z":1,"paymentKey":"tgen_20240101abcdef","a":2}`)); err != nil || string(out) != `{"z":1,"paymentKey":"tgen***","a":2}` {
		t.Fatalf("order not kept: %s %v", out, err)
	}
}

func TestSlogReplacer(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: NewFields().SlogReplacer()}))
	log.Info("confirm", "paymentKey", "tgen_20240101abcdef", "orderId", 1)
	if strings.Contains(buf.String(), "tgen_20240101abcdef") {
		t.Fatalf("payment key logged in full: %s", buf.String())
	}
}
