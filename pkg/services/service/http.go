package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/come2us/opsctl/pkg/services/httpapi"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBody is the default request body limit: SAGA requests are small JSON documents.
const MaxBody = 64 << 10

// APIError is an error answer of a service's HTTP API (see httpapi.APIError).
type APIError = httpapi.APIError

// Errorf builds an APIError.
func Errorf(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error codes shared by every service's HTTP API.
const (
	CodeInvalidRequest   = "INVALID_REQUEST"
	CodeBodyTooLarge     = "BODY_TOO_LARGE"
	CodeUnsupportedMedia = "UNSUPPORTED_MEDIA_TYPE"
	CodeNotFound         = "NOT_FOUND"
	CodeInternal         = "INTERNAL"
	CodeUnavailable      = "UNAVAILABLE"
)

// Unchanged is appended to messages of rejected requests.
const Unchanged = "nothing was changed"

// HandlerFunc is an HTTP handler that returns its error; the runtime writes it as JSON (an
// APIError with its status, anything else as a 500 that is logged).
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// WriteJSON writes v as the JSON body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads r's body, at most limit bytes (MaxBody when 0), into dst. It refuses a
// non-JSON content type, a body over the limit, malformed JSON, unknown fields (a misspelt field
// must not be silently ignored) and trailing data, each with an APIError naming the problem.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, limit int64) error {
	if limit <= 0 {
		limit = MaxBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return Errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia,
				"Content-Type %q is not application/json; %s", ct, Unchanged)
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return decodeError(err, limit)
		}
		return Errorf(http.StatusBadRequest, CodeInvalidRequest, "request body has data after the JSON document; %s", Unchanged)
	}
	return nil
}

func decodeError(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return Errorf(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "request body is larger than %d bytes; %s", limit, Unchanged)
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, CodeInvalidRequest, "request body is empty; send a JSON document; %s", Unchanged)
	case errors.As(err, &syn):
		return Errorf(http.StatusBadRequest, CodeInvalidRequest, "request body is not valid JSON at byte %d: %v; %s", syn.Offset, err, Unchanged)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, CodeInvalidRequest, "request body is truncated JSON; %s", Unchanged)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(document)"
		}
		return Errorf(http.StatusBadRequest, CodeInvalidRequest, "field %s must be %s, not %s; %s", field, typ.Type, typ.Value, Unchanged)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return Errorf(http.StatusBadRequest, CodeInvalidRequest, "request has %s; %s",
			strings.TrimPrefix(err.Error(), "json: "), Unchanged)
	}
	return Errorf(http.StatusBadRequest, CodeInvalidRequest, "request body: %v; %s", err, Unchanged)
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
