package clock_test

import (
	"fmt"
	"time"

	"github.com/ipcframe/ipcframe/internal/clock"
)

// A manual clock runs the calls that fall due when the test moves it, in
// deadline order, and each call reads its own deadline as the time.
func ExampleManual() {
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	m := clock.NewManual(start)
	m.AfterFunc(2*time.Second, func() { fmt.Println("ping at", m.Now().Sub(start)) })
	m.AfterFunc(time.Second, func() { fmt.Println("tick at", m.Now().Sub(start)) })
	stopped := m.AfterFunc(time.Second, func() { fmt.Println("never") })
	stopped.Stop()

	fmt.Println("pending:", m.Pending())
	m.Advance(5 * time.Second)
	fmt.Println("now:", m.Now().Sub(start), "pending:", m.Pending())
	// Output:
	// pending: 2
	// tick at 1s
	// ping at 2s
	// now: 5s pending: 0
}
