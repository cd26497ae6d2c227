package startup_test

import (
	"os"
	"runtime/debug"
	"testing"

	// The packages opsctl links that allocate most as they are initialised: Argo CD's client,
	// with Kubernetes' API schemes and kubectl behind it.
	_ "github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/startup"
)

func TestCollectorRestsDuringInit(t *testing.T) {
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: the user's setting stands and nothing is raised")
	}
	during := debug.SetGCPercent(-1)
	debug.SetGCPercent(during)
	if during != startup.InitGCPercent {
		t.Fatalf("GOGC after initialisation = %d, want %d", during, startup.InitGCPercent)
	}
	startup.Done()
	n, raised := startup.CyclesDuringInit()
	if !raised {
		t.Fatal("the setting was not raised")
	}
	// A collection already running when this package was initialised may finish afterwards;
	// none may start. With the default setting, three or four run here.
	if n > 1 {
		t.Errorf("%d collections ran while Argo CD's and Kubernetes' packages were initialised, want none started", n)
	}
	after := debug.SetGCPercent(-1)
	debug.SetGCPercent(after)
	if after != 100 {
		t.Errorf("GOGC after Done = %d, want the default 100 back", after)
	}
	startup.Done() // a second call changes nothing
	if again := debug.SetGCPercent(after); again != after {
		t.Errorf("a second Done changed GOGC to %d", again)
	}
}
