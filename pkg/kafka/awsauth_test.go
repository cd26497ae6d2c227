package kafka

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIRSACredentials(t *testing.T) {
	calls := 0
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		_ = r.ParseForm()
		if r.Form.Get("Action") != "AssumeRoleWithWebIdentity" || r.Form.Get("WebIdentityToken") != "jwt-token" || r.Form.Get("RoleArn") != "arn:aws:iam::1:role/order" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<ErrorResponse><Error><Code>AccessDenied</Code><Message>nope</Message></Error></ErrorResponse>`))
			return
		}
		_, _ = w.Write([]byte(`<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>
<AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>session</SessionToken>
<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`))
	}))
	defer sts.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("jwt-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/order")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)

	c := newAWSCredentials()
	for range 2 {
		a, err := c.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if a.AccessKey != "ASIAEXAMPLE" || a.SecretKey != "secret" || a.SessionToken != "session" {
			t.Fatalf("credentials %+v", a)
		}
	}
	if calls != 1 {
		t.Fatalf("STS called %d times, want 1 (cached)", calls)
	}
	c.now = func() time.Time { return time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC) }
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/other")
	if _, err := c.get(context.Background()); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("expired cache + denied role: %v", err)
	}
	t.Setenv("AWS_ROLE_ARN", "")
	if _, err := newAWSCredentials().get(context.Background()); err == nil || !strings.Contains(err.Error(), "IRSA") {
		t.Fatalf("no credentials: %v", err)
	}
}
