package redrive

import (
	"bytes"
	"fmt"
	"os"
	"sync"
)

// Source hands out the policy to apply. Policy always returns a usable policy; a non-nil
// problem says the source's newest version was refused and an older good one is in force.
type Source interface {
	Policy() (p *Policy, problem error)
}

// Static is a Source of one policy that never changes (the built-in default, a context's).
type Static struct{ P *Policy }

// Policy returns the policy.
func (s Static) Policy() (*Policy, error) { return s.P, nil }

// FileSource is a policy file that is read again whenever its content changes, as a
// ConfigMap mounted in a pod changes under a running agent. A version that is not valid is
// refused (the problem names its lines) and the last good policy stays in force.
type FileSource struct {
	path string

	mu   sync.Mutex
	good *Policy
	text []byte // the text last read, good or not
	bad  error  // why the text last read was refused, nil when it is in force
}

// NewFileSource reads the policy file at path. It must be valid: an agent has no older policy
// to fall back on when it starts.
func NewFileSource(path string) (*FileSource, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read redrive policy: %w", err)
	}
	p, err := Parse(text, path)
	if err != nil {
		return nil, err
	}
	return &FileSource{path: path, good: p, text: text}, nil
}

// Path returns the file's path.
func (s *FileSource) Path() string { return s.path }

// Policy reads the file again and returns the policy in force: the new version when it
// changed and is valid, else the last good one, with the problem of the version refused.
func (s *FileSource) Policy() (*Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text, err := os.ReadFile(s.path)
	if err != nil {
		return s.good, fmt.Errorf("read redrive policy %s: %w; still applying policy %s", s.path, err, s.good.Digest)
	}
	if bytes.Equal(text, s.text) {
		if s.bad != nil {
			return s.good, s.bad
		}
		return s.good, nil
	}
	s.text = text
	p, err := Parse(text, s.path)
	if err != nil {
		s.bad = fmt.Errorf("%w; still applying policy %s", err, s.good.Digest)
		return s.good, s.bad
	}
	s.good, s.bad = p, nil
	return p, nil
}
