package prometheus_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind (the services
// and HTTP servers the tests start stop at cleanup).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// gnet's package-level ants worker pool: started at init, idle
		// workers linger.
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*goWorker).run.func1"),
	)
}
