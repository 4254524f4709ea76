package test

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// tcpProxy is a test listener between a client and a server. It hands each
// accepted connection to serve, runs serve and the goroutines serve starts
// through goServe, and at cleanup closes the listener and every connection
// it accepted or dialed, then waits for all of them.
type tcpProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex // guards conns
	conns []net.Conn
}

// newTCPProxy listens on an ephemeral port; start begins accepting. target
// is what dialTarget and forward dial (empty for a listener that only
// answers, such as a fake proxy or an echo server).
func newTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// start hands every connection accepted from now on to serve, on a
// goroutine of its own.
func (p *tcpProxy) start(serve func(in net.Conn)) {
	p.goServe(func() {
		for {
			in, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.track(in)
			p.goServe(func() { serve(in) })
		}
	})
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

// goServe runs f on a goroutine the cleanup waits for.
func (p *tcpProxy) goServe(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

func (p *tcpProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// dialTarget dials the target; the cleanup closes the connection. On
// failure it closes in.
func (p *tcpProxy) dialTarget(in net.Conn) (net.Conn, bool) {
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		in.Close()
		return nil, false
	}
	p.track(out)
	return out, true
}

// forward copies bytes both ways between in and the target until either
// side closes.
func (p *tcpProxy) forward(in net.Conn) {
	out, ok := p.dialTarget(in)
	if !ok {
		return
	}
	p.goServe(func() { _, _ = io.Copy(out, in); out.Close() })
	_, _ = io.Copy(in, out)
	in.Close()
}
