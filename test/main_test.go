// Package test holds ipcframe's end-to-end and conformance suites: ports of
// SolidFrame mprpc's test scenarios run over real sockets on loopback.
package test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(netnsPeerEnv); addr != "" {
		os.Exit(runNetnsPeer(addr)) // a host of netns_test.go (netns_lab_test.go)
	}
	goleak.VerifyTestMain(m,
		// gnet's package-level ants worker pool (gnet registers dialed
		// sockets through it): started at init, idle workers linger.
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*goWorker).run.func1"),
	)
}
