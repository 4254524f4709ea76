package reactor

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWakeAfterRead: an OnWake that finds input waiting in its socket
// (InputPending) and calls WakeAfterRead gets its next OnWake only after
// gnet has read that input and OnData has run. A plain Wake from OnWake
// runs the next OnWake first (gnet runs its tasks before it polls), which
// is what a writer holding a large message's bytes for a small message
// that arrived must avoid (readfirst.go).
func TestWakeAfterRead(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string
		first  = true
		inWake = make(chan struct{})
		done   = make(chan []string, 1)
	)
	note := func(e string) {
		mu.Lock()
		events = append(events, e)
		if len(events) == 4 {
			done <- append([]string(nil), events...)
		}
		mu.Unlock()
	}
	p := newPeer(t)
	r := startReactor(t, Config{Loops: 1}, &testHandler{
		wake: func(c *Conn) {
			if !first {
				note("wake")
				return
			}
			first = false
			close(inWake)
			// Wait, on the loop, for the peer's byte to reach the socket
			// (the loop is busy: gnet cannot read it meanwhile).
			pending := false
			for end := time.Now().Add(waitLong); !pending && time.Now().Before(end); {
				pending = c.InputPending() == 1
			}
			if pending {
				note("pending")
			} else {
				note("no input")
			}
			note("hold")
			c.WakeAfterRead()
		},
		data: func(c *Conn, b []byte) int {
			note("data")
			return len(b)
		},
	})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)

	c.Wake()
	recv(t, inWake)
	_, err = nc.Write([]byte{'x'})
	require.NoError(t, err)
	require.Equal(t, []string{"pending", "hold", "data", "wake"}, recv(t, done))
	require.EqualValues(t, 1, r.Stats().ReadFirst)
}

// TestWakeAfterReadNoInput: with no input to read, the wake asked for by
// WakeAfterRead still comes (after StallPoll at the latest), from OnWake
// and from OnData alike; and InputPending reports false.
func TestWakeAfterReadNoInput(t *testing.T) {
	wakes := make(chan bool, 4)
	datas := make(chan bool, 1)
	var chain atomic.Bool
	p := newPeer(t)
	r := startReactor(t, Config{Loops: 1}, &testHandler{
		wake: func(c *Conn) {
			if chain.CompareAndSwap(true, false) {
				c.Wake()
				c.WakeAfterRead()
			}
			wakes <- c.InputPending() > 0
		},
		data: func(c *Conn, b []byte) int {
			c.WakeAfterRead() // from OnData: the wake is idle
			datas <- c.InputPending() > 0
			return len(b)
		},
	})
	c, err := r.Dial(dialCtx(t), p.addr(), nil)
	require.NoError(t, err)
	nc := p.accept(t)
	_, err = nc.Write([]byte{'x'})
	require.NoError(t, err)
	require.False(t, recv(t, datas), "nothing more was sent")
	require.False(t, recv(t, wakes), "the deferred wake came")

	// From OnWake: the wake asked for meanwhile is deferred, not lost.
	chain.Store(true)
	c.Wake()
	require.False(t, recv(t, wakes))
	require.False(t, recv(t, wakes), "the deferred wake came")
}
