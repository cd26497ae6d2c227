package paymentgateway

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Decision decides a confirm on the test PG: nil approves, an *Error declines (or fails) it.
type Decision func(ConfirmRequest) *Error

// DeclineByPrefix declines payment keys starting with prefix as a card company's refusal and
// approves everything else — the sandbox's and the tests' way to script outcomes.
func DeclineByPrefix(prefix string) Decision {
	return func(r ConfirmRequest) *Error {
		if strings.HasPrefix(r.PaymentKey, prefix) {
			return &Error{Status: http.StatusForbidden, Code: CodeRejectCard, Message: "카드사에서 결제를 거절했습니다."}
		}
		return nil
	}
}

// Server is an in-memory PG with Toss' confirm and lookup APIs for tests and the sandbox. It is
// safe for concurrent use.
type Server struct {
	secretKey string
	decide    Decision
	now       func() time.Time

	mu        sync.Mutex
	byKey     map[string]answer  // Idempotency-Key → first answer
	confirmed map[string]Payment // paymentKey → approved payment
	byOrder   map[string]Payment // orderId → its latest payment (approved or aborted)
	failNext  []*Error
	failLook  []*Error
	calls     int
	hold      chan struct{} // while not nil, confirm answers wait for it to close
	held      int           // confirms decided whose answer is waiting on hold
}

type answer struct {
	req    ConfirmRequest
	status int
	body   []byte
}

// NewServer returns a PG accepting secretKey and deciding with decide (DeclineByPrefix("fail")
// when nil).
func NewServer(secretKey string, decide Decision) *Server {
	if decide == nil {
		decide = DeclineByPrefix("fail")
	}
	return &Server{secretKey: secretKey, decide: decide, now: time.Now,
		byKey: map[string]answer{}, confirmed: map[string]Payment{}, byOrder: map[string]Payment{}}
}

// HoldAnswers makes the PG answer late: every confirm from now on is decided and, when approved,
// charged at once, but its answer waits until release is called (or the caller gives up and goes
// away). It is the gateway that approves and then does not answer in time.
func (s *Server) HoldAnswers() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.hold = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.hold == ch {
				s.hold = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Held is how many confirms were decided while answers were held and have not answered yet.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// FailNext makes the next n confirms (with new idempotency keys) answer with e — e.g. a 500 — so
// tests can exercise temporary PG failures. Failed answers are not remembered under their key,
// like a request the PG never processed.
func (s *Server) FailNext(n int, e *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, e)
	}
}

// FailLookups makes the next n lookups by orderId answer with e — e.g. a 500 — the gateway that
// cannot say what became of a payment.
func (s *Server) FailLookups(n int, e *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failLook = append(s.failLook, e)
	}
}

// Calls is how many confirm requests reached the PG with valid credentials.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Approved is how many distinct payment keys were approved: how many charges the PG made.
func (s *Server) Approved() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.confirmed)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func errBody(e *Error) []byte {
	b, _ := json.Marshal(e)
	return b
}

// ServeHTTP serves POST /v1/payments/confirm and GET /v1/payments/orders/{orderId}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	orderID, isLookup := strings.CutPrefix(r.URL.Path, "/v1/payments/orders/")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payments/confirm":
	case r.Method == http.MethodGet && isLookup && orderID != "":
	default:
		writeJSON(w, http.StatusNotFound, errBody(&Error{Code: "NOT_FOUND", Message: "no such endpoint"}))
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(BasicAuth(s.secretKey))) != 1 {
		writeJSON(w, http.StatusUnauthorized, errBody(&Error{Code: CodeUnauthorizedKey, Message: "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."}))
		return
	}
	if isLookup {
		s.lookup(w, orderID)
		return
	}
	var req ConfirmRequest
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil || json.Unmarshal(raw, &req) != nil || req.PaymentKey == "" || req.OrderID == "" || req.Amount <= 0 {
		writeJSON(w, http.StatusBadRequest, errBody(&Error{Code: CodeInvalidRequest, Message: "잘못된 요청입니다."}))
		return
	}
	status, body, hold := s.confirmKey(r.Header.Get("Idempotency-Key"), req)
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}
	writeJSON(w, status, body)
}

func (s *Server) lookup(w http.ResponseWriter, orderID string) {
	s.mu.Lock()
	p, ok := s.byOrder[orderID]
	var fail *Error
	if len(s.failLook) > 0 {
		fail, s.failLook = s.failLook[0], s.failLook[1:]
	}
	s.mu.Unlock()
	if fail != nil {
		writeJSON(w, fail.Status, errBody(fail))
		return
	}
	if !ok {
		writeJSON(w, http.StatusNotFound, errBody(&Error{Code: CodeNotFoundPayment, Message: "존재하지 않는 결제 정보 입니다."}))
		return
	}
	b, _ := json.Marshal(p)
	writeJSON(w, http.StatusOK, b)
}

// confirmKey decides a confirm under the lock and returns its answer, and the channel the answer
// must wait for when answers are held.
func (s *Server) confirmKey(key string, req ConfirmRequest) (int, []byte, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if key != "" {
		if a, ok := s.byKey[key]; ok {
			if a.req != req {
				return http.StatusUnprocessableEntity, errBody(&Error{Code: CodeIdempotentMismatch, Message: "같은 멱등키로 다른 요청을 보냈습니다."}), nil
			}
			return a.status, a.body, nil
		}
	}
	if len(s.failNext) > 0 {
		e := s.failNext[0]
		s.failNext = s.failNext[1:]
		return e.Status, errBody(e), nil
	}
	status, body := s.confirm(req)
	if key != "" {
		s.byKey[key] = answer{req: req, status: status, body: body}
	}
	if s.hold != nil {
		s.held++
	}
	return status, body, s.hold
}

func (s *Server) confirm(req ConfirmRequest) (int, []byte) {
	if _, ok := s.confirmed[req.PaymentKey]; ok {
		return http.StatusBadRequest, errBody(&Error{Code: CodeAlreadyProcessed, Message: "이미 처리된 결제 입니다."})
	}
	if e := s.decide(req); e != nil {
		s.byOrder[req.OrderID] = Payment{PaymentKey: req.PaymentKey, OrderID: req.OrderID, Status: StatusAborted, TotalAmount: req.Amount}
		return e.Status, errBody(e)
	}
	p := Payment{PaymentKey: req.PaymentKey, OrderID: req.OrderID, Status: StatusDone, TotalAmount: req.Amount,
		Method: "카드", ApprovedAt: s.now().Format("2006-01-02T15:04:05-07:00")}
	s.confirmed[req.PaymentKey] = p
	s.byOrder[req.OrderID] = p
	b, _ := json.Marshal(p)
	return http.StatusOK, b
}
