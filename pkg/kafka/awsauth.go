package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/sasl/aws"
)

// awsCredentialTimeout bounds one credential lookup (a profile read, an SSO cache read, an STS
// or instance-metadata call): a hung endpoint fails the Kafka connection with an error instead of
// stalling it.
const awsCredentialTimeout = 15 * time.Second

// awsCredentials resolves AWS credentials for MSK IAM auth with the AWS SDK's default credential
// chain, so opsctl and the services authenticate however the rest of the AWS tooling on the host
// does: environment keys, a shared config/credentials profile (AWS_PROFILE, `aws sso login`,
// credential_process, assumed roles), IRSA's web-identity token, EKS Pod Identity and ECS
// container credentials, then EC2 instance metadata. The SDK caches what it gets until shortly
// before expiry.
type awsCredentials struct {
	load func(context.Context) (sdkaws.CredentialsProvider, error)

	mu       sync.Mutex
	provider sdkaws.CredentialsProvider
}

// newAWSCredentials returns the default chain; region, when set (the context's sasl.region), is
// the region STS is asked in, otherwise the SDK's own lookup (AWS_REGION, the profile) decides.
func newAWSCredentials(region string) *awsCredentials {
	return &awsCredentials{load: func(ctx context.Context) (sdkaws.CredentialsProvider, error) {
		return loadDefaultAWSCredentials(ctx, region)
	}}
}

// loadDefaultAWSCredentials builds the SDK's default chain. Loading reads only local files; the
// network calls happen on Retrieve, under get's deadline.
func loadDefaultAWSCredentials(ctx context.Context, region string) (sdkaws.CredentialsProvider, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		return nil, errors.New("no credential provider configured")
	}
	return cfg.Credentials, nil
}

// get is franz-go's MSK IAM callback: it returns the current credentials, refreshed by the
// SDK's cache when they near expiry.
func (c *awsCredentials) get(ctx context.Context) (aws.Auth, error) {
	ctx, cancel := context.WithTimeout(ctx, awsCredentialTimeout)
	defer cancel()
	provider, err := c.chain(ctx)
	if err != nil {
		return aws.Auth{}, fmt.Errorf("AWS_MSK_IAM: load AWS configuration: %w", err)
	}
	v, err := provider.Retrieve(ctx)
	if err != nil {
		return aws.Auth{}, fmt.Errorf("AWS_MSK_IAM needs AWS credentials (environment keys, AWS_PROFILE or `aws sso login`, IRSA, EKS Pod Identity or instance metadata); none worked: %w", err)
	}
	return aws.Auth{AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey, SessionToken: v.SessionToken, UserAgent: "opsctl"}, nil
}

// chain loads the credential chain once; a failed load is tried again on the next connection, so
// a profile fixed while the process runs is picked up.
func (c *awsCredentials) chain(ctx context.Context) (sdkaws.CredentialsProvider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	p, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	c.provider = p
	return p, nil
}
