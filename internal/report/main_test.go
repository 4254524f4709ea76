package report_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine running (the
// headless browser's process is run through os/exec, whose output copying
// and context watch are goroutines).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
