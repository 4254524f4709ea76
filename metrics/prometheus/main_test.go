package prometheus_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ipcframe/ipcframe/internal/leaktest"
)

// TestMain fails the run if a test leaves a goroutine behind (the services
// and HTTP servers the tests start stop at cleanup).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Ignore()...)
}
