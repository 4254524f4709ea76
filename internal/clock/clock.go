// Package clock is the time source of the engine's timers: the reactor's
// loop timers, ipc's keepalive, inactivity and dead-peer checks and the
// pool's reconnect backoff. Production code uses Real; tests pass a Manual
// clock through reactor.Config.Clock and ipc.Config.Clock and move time
// themselves, so no test sleeps or bounds a duration.
//
// testing/synctest cannot be used instead: its bubbles forbid the real
// sockets and epoll the engine runs on.
package clock

import "time"

// Clock tells the time and runs functions later.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f, on a goroutine of the clock's choosing, once d has
	// elapsed (at once for d <= 0), unless the returned timer is stopped
	// first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call; it reports whether the call was pending.
	Stop() bool
	// Reset makes the call due d from now, whether or not it already ran
	// or was stopped; it reports whether the call was pending.
	Reset(d time.Duration) bool
}

// Real returns the system clock: time.Now and time.AfterFunc.
func Real() Clock { return realClock{} }

// Or returns c, or the system clock when c is nil (the documented meaning
// of a nil Clock in a Config).
func Or(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
