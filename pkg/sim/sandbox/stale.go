package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	// tempDirPrefix names a temporary state directory in os.TempDir().
	tempDirPrefix = "opsctl-sandbox-"
	// pidFile in a temporary state directory holds the process ID of the sandbox that owns it.
	pidFile = "sandbox.pid"
)

// StaleTempDirs returns the temporary state directories under dir whose sandbox is gone: their
// pid file names a process that no longer runs. A directory without a readable pid file is
// left alone (it may be starting, or not be a sandbox's); so is one whose process runs.
func StaleTempDirs(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var stale []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), tempDirPrefix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(filepath.Join(path, pidFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() || processRuns(pid) {
			continue
		}
		stale = append(stale, path)
	}
	return stale
}
