package kafka

import "os"

// Config is how to reach one cluster: the kafka section of an opsctl context, and what the
// services read from their environment.
type Config struct {
	Brokers  []string `yaml:"brokers,omitempty" json:"brokers,omitempty"`
	ClientID string   `yaml:"clientId,omitempty" json:"clientId,omitempty"`
	TLS      TLS      `yaml:"tls,omitempty" json:"tls"`
	SASL     SASL     `yaml:"sasl,omitempty" json:"sasl"`
}

// TLS configures the Kafka connection's TLS.
type TLS struct {
	Enabled            bool   `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	CAFile             string `yaml:"caFile,omitempty" json:"caFile,omitempty"`
	CertFile           string `yaml:"certFile,omitempty" json:"certFile,omitempty"`
	KeyFile            string `yaml:"keyFile,omitempty" json:"keyFile,omitempty"`
	ServerName         string `yaml:"serverName,omitempty" json:"serverName,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecureSkipVerify,omitempty" json:"insecureSkipVerify,omitempty"`
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScram256    = "SCRAM-SHA-256"
	SASLScram512    = "SCRAM-SHA-512"
	SASLAWSMSKIAM   = "AWS_MSK_IAM"
	SASLMechanismNo = ""
)

// SASL configures Kafka authentication. Password may be given inline, or better through
// PasswordEnv, the name of an environment variable holding it.
type SASL struct {
	Mechanism   string `yaml:"mechanism,omitempty" json:"mechanism,omitempty"`
	Username    string `yaml:"username,omitempty" json:"username,omitempty"`
	Password    string `yaml:"password,omitempty" json:"password,omitempty"`
	PasswordEnv string `yaml:"passwordEnv,omitempty" json:"passwordEnv,omitempty"`
	// Region is the AWS region for AWS_MSK_IAM; credentials come from the usual AWS chain.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
}

// SASLPassword returns the SASL password, from PasswordEnv when set.
func (s SASL) SASLPassword() string {
	if s.PasswordEnv != "" {
		return os.Getenv(s.PasswordEnv)
	}
	return s.Password
}
