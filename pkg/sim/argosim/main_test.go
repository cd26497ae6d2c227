package argosim

import (
	"os"
	"testing"

	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
)

// TestMain isolates git from the machine's configuration once, before any test runs, so that
// the tests on a real GitOps remote can run in parallel (gitopstest.Isolate's t.Setenv is
// refused there).
func TestMain(m *testing.M) {
	os.Exit(gitopstest.Main(m, nil))
}
