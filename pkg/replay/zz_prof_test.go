package replay

import (
	"context"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/dlt"
)

func TestZZProf(t *testing.T) {
	if os.Getenv("ZZPROF") == "" {
		t.Skip()
	}
	c := benchCluster(t)
	seedBench(t, c, 300000)
	e := newEngine(t, c)
	ctx := context.Background()
	for _, mode := range []string{"stats", "list"} {
		f, _ := os.Create("/tmp/readpath-" + mode + ".prof")
		pprof.StartCPUProfile(f)
		start := time.Now()
		switch mode {
		case "stats":
			if _, err := e.Stats(ctx, benchDLT, nil); err != nil {
				t.Fatal(err)
			}
		case "list":
			where, _ := CompileWhere(`errorCode == "NO_SUCH_CODE" && quantity > 2`)
			if _, err := e.List(ctx, benchDLT, &Selection{Where: where}, func(*dlt.Record) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		pprof.StopCPUProfile()
		f.Close()
		t.Logf("%s: %s", mode, time.Since(start))
	}
}
