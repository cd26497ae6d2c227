// Package buildinfo carries the version stamp that goreleaser injects with -ldflags, so every
// binary of the project can say exactly which build it is.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version, Commit and Date are set at link time:
//
//	-X github.com/come2us/opsctl/pkg/buildinfo.Version=1.2.3
//
// They stay empty in a plain `go build`; String then falls back to the module build info.
var (
	Version string
	Commit  string
	Date    string
)

// Info is the resolved build stamp.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get resolves the stamp, using the VCS information Go embeds when ldflags did not set it.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// String renders the stamp on one line, as `opsctl version` prints it.
func (i Info) String() string {
	s := fmt.Sprintf("%s (%s/%s)", i.Version, i.GoVersion, i.Platform)
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " commit " + c
	}
	if i.Date != "" {
		s += " built " + i.Date
	}
	return s
}
