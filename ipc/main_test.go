package ipc

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ipcframe/ipcframe/internal/leaktest"
)

func TestMain(m *testing.M) {
	if args := os.Getenv(peerEnv); args != "" {
		os.Exit(peerMain(args)) // peerproc_test.go
	}
	goleak.VerifyTestMain(m, leaktest.Ignore()...)
}
