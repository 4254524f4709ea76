// Package test holds ipcframe's end-to-end and conformance suites: ports of
// SolidFrame mprpc's test scenarios run over real sockets on loopback.
package test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
