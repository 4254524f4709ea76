package hol

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ipcframe/ipcframe/internal/leaktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Ignore()...)
}
