package service_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/come2us/opsctl/pkg/services/service"
)

// FuzzDecodeJSON: whatever a client sends, decoding either fills the struct or answers with a
// 4xx APIError that says nothing was changed — never a panic, never a 5xx.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"userId":"u","lines":[{"optionValueId":1,"quantity":2}],"couponId":3}`,
		`{"userId":`, `[]`, `null`, `{"lines":[{"quantity":"x"}]}`, `{"a":1} {}`, "\x00\xff", `{"couponId":1e400}`,
		`{"lines":[` + strings.Repeat(`{"optionValueId":1},`, 50) + `{}]}`,
	} {
		f.Add([]byte(seed))
	}
	type line struct {
		OptionValueID int64 `json:"optionValueId"`
		Quantity      int64 `json:"quantity"`
	}
	type req struct {
		UserID   string `json:"userId"`
		Lines    []line `json:"lines"`
		CouponID *int64 `json:"couponId"`
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(string(body)))
		w := httptest.NewRecorder()
		var dst req
		err := service.DecodeJSON(w, r, &dst, 1024)
		if err == nil {
			return
		}
		var ae *service.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("error %v is not an API error", err)
		}
		if ae.Status < 400 || ae.Status >= 500 || !strings.Contains(ae.Message, service.Unchanged) {
			t.Fatalf("answer %d %q", ae.Status, ae.Message)
		}
	})
}
