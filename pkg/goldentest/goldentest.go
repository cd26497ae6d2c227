// Package goldentest compares test output with golden files through charmbracelet/x/exp/golden,
// the helper teatest uses: a file per test at testdata/<TestName>/<name>.golden, rewritten by
// `go test -update`, a unified diff when it differs. One helper for every package's goldens.
package goldentest

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"
)

// Equal compares got with the golden file called name under the current test
// (testdata/<TestName>/<name>.golden). When the test is already the subtest called name, the
// file is testdata/<TestName>/<name>.golden as well: no second level is added.
func Equal(t *testing.T, name string, got []byte) {
	t.Helper()
	name = strings.TrimSuffix(name, ".golden")
	if name == "" || strings.HasSuffix(t.Name(), "/"+name) {
		golden.RequireEqual(t, got)
		return
	}
	t.Run(name, func(t *testing.T) {
		t.Helper()
		golden.RequireEqual(t, got)
	})
}
