// Package test holds ipcframe's end-to-end and conformance suites: ports of
// SolidFrame mprpc's test scenarios run over real sockets on loopback.
package test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ipcframe/ipcframe/internal/leaktest"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(netnsPeerEnv); addr != "" {
		os.Exit(runNetnsPeer(addr)) // a host of netns_test.go (netns_lab_test.go)
	}
	goleak.VerifyTestMain(m, leaktest.Ignore()...)
}
