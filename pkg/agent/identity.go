package agent

import (
	"os"
	"strings"

	"github.com/google/uuid"
)

// Identity is who an agent is.
type Identity struct {
	// Actor is what the agent's work is credited to — replay runs in the ledger, commits —
	// as "opsctl-agent@<pod or host>".
	Actor string
	// ID is unique to this process (the actor and a random suffix): the lease's holder
	// identity. Two processes on one host, or a pod restarted under the same name, never
	// take each other for the lease holder.
	ID string
}

// NewIdentity returns the identity of an agent running as pod (the downward API's pod name),
// or on this host when pod is "".
func NewIdentity(pod string) Identity {
	name := strings.TrimSpace(pod)
	if name == "" {
		name, _ = os.Hostname()
	}
	if name == "" {
		name = "unknown"
	}
	actor := "opsctl-agent@" + name
	return Identity{Actor: actor, ID: actor + "/" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]}
}
