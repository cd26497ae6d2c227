package kafka

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// isolateAWS points every AWS SDK lookup at an empty home so that the host's own credentials,
// profiles and instance metadata never leak into a test.
func isolateAWS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL_STS"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("HOME", dir)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "ap-northeast-2")
	return dir
}

func TestAWSCredentialsFromEnvironment(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_SESSION_TOKEN", "env-session")
	a, err := newAWSCredentials("").get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKey != "AKIAENV" || a.SecretKey != "env-secret" || a.SessionToken != "env-session" {
		t.Fatalf("credentials %+v", a)
	}
}

// The hand-written chain this replaced read only environment keys and IRSA: a named profile (what
// `aws configure` and `aws sso login` leave behind) was ignored.
func TestAWSCredentialsFromProfile(t *testing.T) {
	dir := isolateAWS(t)
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte("[oncall]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_PROFILE", "oncall")
	a, err := newAWSCredentials("").get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKey != "AKIAPROFILE" || a.SecretKey != "profile-secret" {
		t.Fatalf("credentials %+v", a)
	}
}

func TestAWSCredentialsFromIRSA(t *testing.T) {
	isolateAWS(t)
	var calls atomic.Int32
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = r.ParseForm()
		if r.Form.Get("Action") != "AssumeRoleWithWebIdentity" || r.Form.Get("WebIdentityToken") != "jwt-token" || r.Form.Get("RoleArn") != "arn:aws:iam::1:role/order" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>nope</Message></Error></ErrorResponse>`))
			return
		}
		_, _ = w.Write([]byte(`<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>
<AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>session</SessionToken>
<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`))
	}))
	defer sts.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("jwt-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/order")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)

	c := newAWSCredentials("")
	for range 2 {
		a, err := c.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if a.AccessKey != "ASIAEXAMPLE" || a.SecretKey != "secret" || a.SessionToken != "session" {
			t.Fatalf("credentials %+v", a)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("STS called %d times, want 1 (cached until expiry)", n)
	}

	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/other")
	if _, err := newAWSCredentials("").get(context.Background()); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("denied role: %v", err)
	}
}

func TestAWSCredentialsNoneFound(t *testing.T) {
	isolateAWS(t)
	_, err := newAWSCredentials("").get(context.Background())
	if err == nil || !strings.Contains(err.Error(), "AWS_MSK_IAM needs AWS credentials") {
		t.Fatalf("no credentials: %v", err)
	}
}

// An STS endpoint that accepts and never answers fails the lookup within its deadline instead of
// stalling the Kafka connection.
func TestAWSCredentialsHungSTS(t *testing.T) {
	isolateAWS(t)
	hang := make(chan struct{})
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer sts.Close()
	defer close(hang)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("jwt-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/order")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := newAWSCredentials("").get(ctx); err == nil {
		t.Fatal("a hung STS gave credentials")
	}
}
