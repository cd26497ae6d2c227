package argosim

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/watch"
)

// A watcher that falls behind is dropped, so its stream ends and the client starts again
// from the current state, rather than silently missing changes.
func TestPublishDropsAWatcherTooFarBehind(t *testing.T) {
	t.Parallel()
	api := NewAPI(nil, APIConfig{Token: "t"})
	slow, live := api.subscribe(), api.subscribe()
	app := &v1alpha1.Application{}
	app.Name = "order-service-prod"
	for i := 0; i < watchBuffer; i++ {
		api.Publish(watch.Modified, app)
		<-live // keeps up
	}
	if n := api.Watchers(); n != 2 {
		t.Fatalf("Watchers = %d after %d events, want both kept", n, watchBuffer)
	}
	api.Publish(watch.Modified, app)
	if n := api.Watchers(); n != 1 {
		t.Fatalf("Watchers = %d, want the watcher that fell behind dropped", n)
	}
	got := 0
	for range slow {
		got++
	}
	if got != watchBuffer {
		t.Fatalf("the dropped watcher received %d events before its end, want %d", got, watchBuffer)
	}
	if ev := <-live; ev.Type != watch.Modified || ev.Application.Name != app.Name {
		t.Fatalf("live watcher got %+v", ev)
	}
	api.unsubscribe(slow) // the stream's own unsubscribe after a drop must not close twice
	api.unsubscribe(live)
	if n := api.Watchers(); n != 0 {
		t.Fatalf("Watchers = %d after both ended", n)
	}
}

func TestTokenAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, expired, token, want string
	}{
		{"no token", "", "", "no session information"},
		{"wrong token", "", "nope", "invalid session: token signature is invalid"},
		{"expired token", "old", "old", "invalid session: token has invalid claims: token is expired"},
		{"no expired token configured", "", "old", "invalid session: token signature is invalid"},
		{"the token", "old", "t", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := NewAPI(nil, APIConfig{Token: "t", ExpiredToken: tc.expired})
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("token", tc.token))
			err := api.authorize(ctx, "/application.ApplicationService/List")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("authorize = %v", err)
				}
				return
			}
			if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || st.Message() != tc.want {
				t.Fatalf("authorize = %v, want Unauthenticated %q", err, tc.want)
			}
		})
	}
	api := NewAPI(nil, APIConfig{Token: "t"})
	if err := api.authorize(context.Background(), "/version.VersionService/Version"); err != nil {
		t.Fatalf("the version probe needs no token: %v", err)
	}
}

func TestBackendErrorsAnswerArgoCDCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("refresh: %w", context.Canceled), codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{ErrClosed, codes.Unavailable},
		{fmt.Errorf("sync: %w", ErrOperationInProgress), codes.FailedPrecondition},
		{fmt.Errorf("%w: nope", ErrUnknownRevision), codes.NotFound},
		{fmt.Errorf("%w: render failed", ErrComparison), codes.Unknown},
		{errors.New("disk on fire"), codes.Internal},
	} {
		if got := status.Code(statusOf(tc.err)); got != tc.want {
			t.Errorf("statusOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
