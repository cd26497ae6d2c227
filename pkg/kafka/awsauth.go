package kafka

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sasl/aws"
)

// awsCredentials resolves AWS credentials for MSK IAM auth without the AWS SDK, in the order
// that matters for opsctl and the services: static keys from the environment (a shell after
// `aws sso login` / aws-vault), then IRSA — the web-identity token EKS mounts into a pod whose
// ServiceAccount carries a role ARN — exchanged at STS and cached until shortly before expiry.
type awsCredentials struct {
	mu     sync.Mutex
	cached aws.Auth
	until  time.Time
	client *http.Client
	now    func() time.Time
}

func newAWSCredentials() *awsCredentials {
	return &awsCredentials{client: &http.Client{Timeout: 15 * time.Second}, now: time.Now}
}

func (c *awsCredentials) get(ctx context.Context) (aws.Auth, error) {
	if a := (aws.Auth{AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"), SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN"), UserAgent: "opsctl"}); a.AccessKey != "" && a.SecretKey != "" {
		return a, nil
	}
	roleARN, tokenFile := os.Getenv("AWS_ROLE_ARN"), os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE")
	if roleARN == "" || tokenFile == "" {
		return aws.Auth{}, errors.New("AWS_MSK_IAM needs credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or IRSA's AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now().Before(c.until) {
		return c.cached, nil
	}
	a, exp, err := c.assumeWithWebIdentity(ctx, roleARN, tokenFile)
	if err != nil {
		return aws.Auth{}, err
	}
	c.cached, c.until = a, exp.Add(-5*time.Minute)
	return a, nil
}

type stsResponse struct {
	Result struct {
		Credentials struct {
			AccessKeyID     string    `xml:"AccessKeyId"`
			SecretAccessKey string    `xml:"SecretAccessKey"`
			SessionToken    string    `xml:"SessionToken"`
			Expiration      time.Time `xml:"Expiration"`
		} `xml:"Credentials"`
	} `xml:"AssumeRoleWithWebIdentityResult"`
}

type stsError struct {
	Error struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
}

// assumeWithWebIdentity calls STS AssumeRoleWithWebIdentity, which needs no signature: the web
// identity token is the credential.
func (c *awsCredentials) assumeWithWebIdentity(ctx context.Context, roleARN, tokenFile string) (aws.Auth, time.Time, error) {
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return aws.Auth{}, time.Time{}, fmt.Errorf("read web identity token: %w", err)
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_STS")
	if endpoint == "" {
		region := os.Getenv("AWS_REGION")
		if region == "" {
			region = os.Getenv("AWS_DEFAULT_REGION")
		}
		if region == "" {
			endpoint = "https://sts.amazonaws.com"
		} else {
			endpoint = "https://sts." + region + ".amazonaws.com"
		}
	}
	session := os.Getenv("AWS_ROLE_SESSION_NAME")
	if session == "" {
		session = fmt.Sprintf("opsctl-%d", c.now().Unix())
	}
	form := url.Values{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {roleARN},
		"RoleSessionName": {session}, "WebIdentityToken": {strings.TrimSpace(string(token))},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return aws.Auth{}, time.Time{}, fmt.Errorf("sts request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client.Do(req)
	if err != nil {
		return aws.Auth{}, time.Time{}, fmt.Errorf("sts AssumeRoleWithWebIdentity: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return aws.Auth{}, time.Time{}, fmt.Errorf("sts AssumeRoleWithWebIdentity: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e stsError
		_ = xml.Unmarshal(body, &e)
		return aws.Auth{}, time.Time{}, fmt.Errorf("sts AssumeRoleWithWebIdentity for %s: HTTP %d %s: %s", roleARN, resp.StatusCode, e.Error.Code, e.Error.Message)
	}
	var r stsResponse
	if err := xml.Unmarshal(body, &r); err != nil {
		return aws.Auth{}, time.Time{}, fmt.Errorf("sts AssumeRoleWithWebIdentity: unreadable answer: %w", err)
	}
	cr := r.Result.Credentials
	if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
		return aws.Auth{}, time.Time{}, errors.New("sts AssumeRoleWithWebIdentity: answer without credentials")
	}
	return aws.Auth{AccessKey: cr.AccessKeyID, SecretKey: cr.SecretAccessKey, SessionToken: cr.SessionToken, UserAgent: "opsctl"}, cr.Expiration, nil
}
