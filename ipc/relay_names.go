package ipc

// Relay names: registration, placeholders for names not registered yet,
// and the syntax of relay paths (docs/relay.md, "Addressing").

import (
	"fmt"
	"strings"
	"time"

	"github.com/ipcframe/ipcframe/internal/clock"
)

// maxRelayName bounds one name of a relay path; maxRelayPath the path a
// send may carry (a relay's own bound is RelayConfig.MaxURL).
const (
	maxRelayName = 255
	maxRelayPath = 0xffff
)

// relayName is one name of a relay node: the connection registered as it,
// or, while none is, the messages waiting for one (a placeholder). Guarded
// by relayEngine.mu.
type relayName struct {
	conn    *conn         // the registered connection; nil for a placeholder
	waiting []relayWaiter // placeholder: messages waiting, oldest first
	timer   clock.Timer   // placeholder: fails the waiters whose time is up
}

// relayWaiter is a message waiting in a placeholder since a time.
type relayWaiter struct {
	st    *msgStub
	since time.Time
}

// checkRelayName checks one name of a relay path.
func checkRelayName(name string) error {
	if name == "" || len(name) > maxRelayName {
		return fmt.Errorf("name of %d bytes, want 1 to %d", len(name), maxRelayName)
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b <= ' ' || b > '~' || b == '/' {
			return fmt.Errorf("byte %#02x at %d in name %q", b, i, name)
		}
	}
	return nil
}

// checkRelayPath checks a relay path: names separated by '/', at most max
// bytes in all.
func checkRelayPath(path string, max int) error {
	if len(path) > max {
		return fmt.Errorf("relay path of %d bytes, limit %d", len(path), max)
	}
	for rest := path; ; {
		name, tail, more := strings.Cut(rest, "/")
		if err := checkRelayName(name); err != nil {
			return err
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// splitDestination splits a send's destination "host:port/path" into the
// pool name and the relay path ("" when there is none).
func splitDestination(name string) (pool, path string) {
	pool, path, _ = strings.Cut(name, "/")
	return pool, path
}

// nameKey is the registration key of a name: names are case-insensitive.
func nameKey(name string) string { return strings.ToLower(name) }

// register makes c the destination of name and delivers the messages that
// waited for it.
func (e *relayEngine) register(c *conn, name string) error {
	if err := checkRelayName(name); err != nil {
		return fmt.Errorf("%w: relay name: %w", ErrBadName, err)
	}
	key := nameKey(name)
	e.mu.Lock()
	if c.relay.unregistered {
		e.mu.Unlock()
		return ErrConnectionGone
	}
	n := e.names[key]
	if n == nil {
		n = &relayName{}
		e.names[key] = n
	}
	n.conn = c
	waiting := n.waiting
	n.waiting = nil
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
	c.relay.names = append(c.relay.names, key)
	e.mu.Unlock()
	for _, w := range waiting {
		e.deliver(c, w.st)
	}
	return nil
}

// unregister drops the names c registered, unless a newer registration
// replaced them; later registrations of c fail.
func (e *relayEngine) unregister(c *conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.relay.unregistered = true
	for _, key := range c.relay.names {
		if n := e.names[key]; n != nil && n.conn == c {
			delete(e.names, key)
		}
	}
	c.relay.names = nil
}

// route delivers st to the connection registered as key or, if none is,
// parks it in key's placeholder for at most WaitTimeout.
func (e *relayEngine) route(key string, st *msgStub) {
	e.mu.Lock()
	n := e.names[key]
	if n != nil && n.conn != nil {
		c := n.conn
		e.mu.Unlock()
		e.deliver(c, st)
		return
	}
	if e.cfg.WaitTimeout < 0 {
		e.mu.Unlock()
		st.fail(ErrCanceled, ErrRelayNoRoute)
		return
	}
	if n == nil {
		n = &relayName{}
		e.names[key] = n
	}
	n.waiting = append(n.waiting, relayWaiter{st, e.clock.Now()})
	if n.timer == nil {
		n.timer = e.clock.AfterFunc(e.cfg.WaitTimeout, func() { e.expire(key, n) })
	}
	e.mu.Unlock()
}

// expire fails the messages of placeholder n that waited WaitTimeout, and
// re-arms its timer for the others (timer goroutine).
func (e *relayEngine) expire(key string, n *relayName) {
	var expired []*msgStub
	e.mu.Lock()
	if e.names[key] != n || n.conn != nil {
		e.mu.Unlock()
		return
	}
	now := e.clock.Now()
	k := 0
	for _, w := range n.waiting {
		if now.Sub(w.since) >= e.cfg.WaitTimeout {
			expired = append(expired, w.st)
			continue
		}
		n.waiting[k] = w
		k++
	}
	clear(n.waiting[k:])
	n.waiting = n.waiting[:k]
	if k == 0 {
		delete(e.names, key)
		n.timer = nil
	} else {
		n.timer = e.clock.AfterFunc(e.cfg.WaitTimeout-now.Sub(n.waiting[0].since), func() { e.expire(key, n) })
	}
	e.mu.Unlock()
	for _, st := range expired {
		st.fail(ErrCanceled, ErrRelayNoRoute)
	}
}

// unwait removes st from its placeholder; false when it is not there (it
// was delivered, or failed).
func (e *relayEngine) unwait(st *msgStub) bool {
	key := st.relay.key
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.names[key]
	if n == nil || n.conn != nil {
		return false
	}
	for i, w := range n.waiting {
		if w.st == st {
			n.waiting = append(n.waiting[:i], n.waiting[i+1:]...)
			if len(n.waiting) == 0 {
				if n.timer != nil {
					n.timer.Stop()
				}
				delete(e.names, key)
			}
			return true
		}
	}
	return false
}

// names returns how many names are registered (tests).
func (e *relayEngine) registered() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := 0
	for _, n := range e.names {
		if n.conn != nil {
			k++
		}
	}
	return k
}
