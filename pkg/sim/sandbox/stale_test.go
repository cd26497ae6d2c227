package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestStaleTempDirs: the temporary state of a sandbox that was killed is found by its pid file;
// a running sandbox's, one without a pid file and other directories are not.
func TestStaleTempDirs(t *testing.T) {
	// A process that has ended: its ID names no process (IDs are not reused this fast).
	dead := exec.Command(os.Args[0], "-test.run=^$")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	mk := func(name, pid string) string {
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(p, pidFile), []byte(pid), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	killed := mk(tempDirPrefix+"killed", strconv.Itoa(dead.Process.Pid))
	mk(tempDirPrefix+"running", strconv.Itoa(os.Getppid()))
	mk(tempDirPrefix+"starting", "")
	mk(tempDirPrefix+"garbage", "not a pid")
	mk("someone-else", strconv.Itoa(dead.Process.Pid))
	if err := os.WriteFile(filepath.Join(root, tempDirPrefix+"file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := StaleTempDirs(root); !slices.Equal(got, []string{killed}) {
		t.Fatalf("stale = %v, want only %s", got, killed)
	}
	if got := StaleTempDirs(filepath.Join(root, "missing")); got != nil {
		t.Fatalf("a missing directory gives %v", got)
	}
}
