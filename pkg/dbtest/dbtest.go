// Package dbtest runs a test against both database engines the services support: SQLite (always
// available) and PostgreSQL (through pgtest, so it skips visibly without a server and fails when
// CI requires one).
package dbtest

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/come2us/opsctl/pkg/pgtest"
)

// Engine names a subtest's database engine.
type Engine string

// The engines ForEach runs.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// NewURL returns the URL of a fresh, empty database on the subtest's engine; call it once per
// database the test needs.
type NewURL func() string

// ForEach runs fn as one subtest per engine.
func ForEach(t *testing.T, fn func(t *testing.T, newURL NewURL)) {
	t.Helper()
	for _, e := range []Engine{SQLite, Postgres} {
		t.Run(string(e), func(t *testing.T) {
			fn(t, URLs(t, e))
		})
	}
}

// URLs returns a NewURL for engine e whose databases are removed when t ends.
func URLs(t testing.TB, e Engine) NewURL {
	n := 0
	return func() string {
		t.Helper()
		n++
		if e == Postgres {
			return pgtest.New(t)
		}
		return "sqlite:" + filepath.Join(t.TempDir(), fmt.Sprintf("db%d.db", n))
	}
}
