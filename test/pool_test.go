package test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// Pool conformance scenarios, ported from SolidFrame mprpc's pool_basic,
// pool_force_close and pool_delay_close, plus the pool algorithm of the
// design notes (§4: pending limit with many addresses, scale-up under
// backlog, passive start and activation; the reconnect backoff is
// TestReconnectBackoffClock in backoff_test.go, under a manual clock).
//
// Identifiers of this file start with "pl" (keepalive_test.go uses them
// too); other files of the package are written concurrently.

// plSignal lets callbacks, which must not block, wake one waiting test
// goroutine that then re-checks its condition.
type plSignal struct{ ch chan struct{} }

func newPLSignal() *plSignal { return &plSignal{ch: make(chan struct{}, 1)} }

func (s *plSignal) notify() {
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

// waitFor blocks until cond holds, re-checking it at each notify.
func (s *plSignal) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(deadline)
	defer timeout.Stop()
	for !cond() {
		select {
		case <-s.ch:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// plEv is one recorded pool event.
type plEv struct {
	ipc.PoolEvent
	At time.Time
}

// plEvents records pool events (Config.PoolEvent) without blocking.
type plEvents struct {
	*plSignal
	mu     sync.Mutex
	evs    []plEv
	sample func(ipc.PoolEvent) // optional, runs in the callback
}

func newPLEvents() *plEvents { return &plEvents{plSignal: newPLSignal()} }

func (r *plEvents) add(e ipc.PoolEvent) {
	now := time.Now()
	if r.sample != nil {
		r.sample(e)
	}
	r.mu.Lock()
	r.evs = append(r.evs, plEv{e, now})
	r.mu.Unlock()
	r.notify()
}

func (r *plEvents) count(kind ipc.PoolEventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (r *plEvents) of(kind ipc.PoolEventKind) []plEv {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []plEv
	for _, e := range r.evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (r *plEvents) waitCount(t testing.TB, kind ipc.PoolEventKind, n int) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("%d %v events", n, kind), func() bool { return r.count(kind) >= n })
}

// plMax keeps the maximum of the samples it is given.
type plMax struct{ v atomic.Int64 }

func (m *plMax) add(v int) {
	for {
		cur := m.v.Load()
		if int64(v) <= cur || m.v.CompareAndSwap(cur, int64(v)) {
			return
		}
	}
}

// plClosedPorts returns n distinct loopback addresses with nothing
// listening: ports that were bound, then released.
func plClosedPorts(t testing.TB, n int) []string {
	t.Helper()
	lns := make([]net.Listener, 0, n)
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		require.NoError(t, ln.Close())
	}
	return addrs
}

// plEchoProto returns a protocol whose handler echoes testmsg.Message
// requests, after checking them with check (if not nil).
func plEchoProto(check func(ipc.Context, *testmsg.Message)) *ipc.Protocol {
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) {
		if check != nil {
			check(ctx, m)
		}
		_ = ctx.Respond(m)
	})
	return p
}

func plClientProto() *ipc.Protocol {
	p := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](p, 1, nil)
	return p
}

// plErrs collects errors from callbacks.
type plErrs struct {
	mu   sync.Mutex
	errs []error
}

func (e *plErrs) add(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err)
	e.mu.Unlock()
}

func (e *plErrs) check(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.Empty(t, e.errs)
}

// TestPoolBasic ports pool_basic: a pool created ahead of sending with one
// persistent connection, then the clientserver_basic scenario addressed by
// the pool's name. Reduced from 150 requests (Table15 ×10) to 30 (Table15
// ×2), 10 in flight, to keep the -race run short; the full 150 run in
// TestClientServerBasic.
func TestPoolBasic(t *testing.T) {
	const total, initial = 30, 10
	sizes := testmsg.Table15
	var serverErrs plErrs
	server := startService(t, ipc.Config{
		Protocol: plEchoProto(func(ctx ipc.Context, m *testmsg.Message) {
			if err := testmsg.Verify(m, sizes[int(m.Idx)%len(sizes)]); err != nil {
				serverErrs.add(err)
			}
			if ctx.Flags()&ipc.OnPeer == 0 || !ctx.IsRequest() {
				serverErrs.add(fmt.Errorf("message %d arrived with flags %v", m.Idx, ctx.Flags()))
			}
		}),
		Listen: "127.0.0.1:0",
	})
	events := newPLEvents()
	client := startService(t, ipc.Config{Protocol: plClientProto(), PoolEvent: events.add})
	addr := server.Addr().String()

	require.NoError(t, client.CreatePool(addr, ipc.PoolOptions{MinConnections: 1}))
	require.Error(t, client.CreatePool(addr, ipc.PoolOptions{}), "a second CreatePool of the same name")
	events.waitCount(t, ipc.PoolConnectionActivate, 1)
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, 1, st.Active)
	require.Zero(t, st.Queued)

	run := chainedEcho(t, client, addr, total, initial)
	serverErrs.check(t)

	// Everything went through the pool's one persistent connection.
	st, ok = client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, uint64(1), st.Connects)
	require.Equal(t, uint64(1), st.Dials)
	require.Equal(t, 1, st.Active)
	require.Equal(t, 1, events.count(ipc.PoolConnectionStart))
	run.quiet(t, client)
}

// plBig is a one-way message whose decoding, on the receiving side, calls
// plDecodeStarted: the trigger "the server starts deserializing a body" of
// SolidFrame's pool close tests.
type plBig struct {
	Idx uint32
	Str []byte
}

var plDecodeStarted atomic.Pointer[func()]

// Serde implements serde.Type.
func (m *plBig) Serde(v *serde.Visitor) {
	if v.Decoding() {
		if f := plDecodeStarted.Load(); f != nil {
			(*f)()
		}
	}
	v.Uint32(&m.Idx)
	v.Bytes(&m.Str)
}

// TestPoolForceClose ports pool_force_close 1|2|4: seven large one-way
// messages; when the server starts deserializing the first one, the client
// aborts the pool. Every message fails with ErrConnection (caused by
// ErrPoolClosed), the server never completes a message, and the abort's
// callback runs exactly once, after the PoolClosed event.
func TestPoolForceClose(t *testing.T) {
	for _, conns := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("conns=%d", conns), func(t *testing.T) { runPoolForceClose(t, conns) })
	}
}

func runPoolForceClose(t *testing.T, conns int) {
	sizes := []int{8192000, 8024000, 8048000, 8096000, 8192000, 16384000, 8192000}

	var handled atomic.Int32
	var serverOpen atomic.Int32
	serverSig := newPLSignal()
	serverProto := ipc.NewProtocol()
	ipc.MustRegister(serverProto, 1, func(ipc.Context, *plBig) { handled.Add(1) })
	server := startService(t, ipc.Config{
		Protocol:        serverProto,
		Listen:          "127.0.0.1:0",
		MaxMultiplex:    4,
		ConnectionStart: func(ipc.ConnInfo) { serverOpen.Add(1); serverSig.notify() },
		ConnectionStop:  func(ipc.ConnInfo, error) { serverOpen.Add(-1); serverSig.notify() },
	})

	events := newPLEvents()
	clientProto := ipc.NewProtocol()
	ipc.MustRegister[plBig](clientProto, 1, nil)
	client := startService(t, ipc.Config{
		Protocol:             clientProto,
		MaxActiveConnections: conns,
		MaxMultiplex:         2,
		PoolEvent:            events.add,
	})
	addr := server.Addr().String()

	var (
		closeCalls  atomic.Int32
		closedAfter atomic.Int32 // PoolClosed events seen when the callback ran
		abortErr    atomic.Value
		closed      = make(chan struct{})
	)
	abort := func() {
		err := client.AbortPool(addr, func() {
			closedAfter.Store(int32(events.count(ipc.PoolClosed)))
			if closeCalls.Add(1) == 1 {
				close(closed)
			}
		})
		if err != nil {
			abortErr.Store(err)
		}
	}
	// The abort runs at the first decode start, but not before all seven
	// sends returned (the connection may start before the last Send).
	var (
		trigMu               sync.Mutex
		armed, wanted, fired bool
	)
	trigger := func(fromServer bool) {
		trigMu.Lock()
		wanted = wanted || fromServer
		now := armed && wanted && !fired
		fired = fired || now
		trigMu.Unlock()
		if now {
			abort()
		}
	}
	hook := func() { trigger(true) }
	plDecodeStarted.Store(&hook)
	t.Cleanup(func() { plDecodeStarted.Store(nil) })

	msgs := make([]*plBig, len(sizes))
	for i, n := range sizes {
		msgs[i] = &plBig{Idx: uint32(i), Str: testmsg.Payload(i, n)}
	}
	results := make(chan error, len(sizes))
	for _, m := range msgs {
		require.NoError(t, client.Send(addr, m, 0, func(err error) { results <- err }))
	}
	trigMu.Lock()
	armed = true
	trigMu.Unlock()
	trigger(false)
	for i := range sizes {
		select {
		case err := <-results:
			require.ErrorIs(t, err, ipc.ErrConnection, "completion %d", i)
			require.ErrorIs(t, err, ipc.ErrPoolClosed, "completion %d", i)
		case <-time.After(deadline):
			t.Fatalf("only %d of %d messages completed", i, len(sizes))
		}
	}
	wait(t, closed, "the AbortPool callback")
	if err, _ := abortErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	require.Equal(t, int32(1), closedAfter.Load(), "PoolClosed comes before the callback")
	// The server's side of every connection closes.
	serverSig.waitFor(t, "the server's connections to close", func() bool { return serverOpen.Load() == 0 })
	require.Zero(t, handled.Load(), "the server completed a message")
	require.Equal(t, int32(1), closeCalls.Load())
	// Connection events pair up, even for a connection that opened while the
	// pool was aborting; the pool disconnects at most once.
	require.Equal(t, events.count(ipc.PoolConnectionStart), events.count(ipc.PoolConnectionStop))
	require.LessOrEqual(t, events.count(ipc.PoolDisconnected), 1)
	require.Equal(t, 1, events.count(ipc.PoolClosed))
	_, ok := client.PoolStats(addr)
	require.False(t, ok, "the closed pool is forgotten")
	// Each message completed once: nothing more arrives.
	select {
	case err := <-results:
		t.Fatalf("extra completion: %v", err)
	default:
	}
}

// TestPoolDelayClose ports pool_delay_close 1|2|4: five echoed requests;
// once the server has received two, the client closes the pool gracefully
// and sends one more to the same name, which fails at once with
// ErrPoolClosing. The five complete with their echoes before the close
// callback, which follows the PoolClosed event.
//
// The server holds its responses until the close and the extra send are
// done, so that the pool cannot finish closing (and free the name) before
// the extra send.
func TestPoolDelayClose(t *testing.T) {
	for _, conns := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("conns=%d", conns), func(t *testing.T) { runPoolDelayClose(t, conns) })
	}
}

func runPoolDelayClose(t *testing.T, conns int) {
	sizes := []int{819200, 802400, 804800, 809600, 819200}
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }

	var received atomic.Int32
	serverSig := newPLSignal()
	var serverErrs plErrs
	serverProto := ipc.NewProtocol()
	ipc.MustRegister(serverProto, 1, func(ctx ipc.Context, m *testmsg.Message) {
		if err := testmsg.Verify(m, sizes[m.Idx]); err != nil {
			serverErrs.add(err)
		}
		received.Add(1)
		serverSig.notify()
		go func() {
			<-release
			if err := ctx.Respond(m); err != nil {
				serverErrs.add(err)
			}
		}()
	})
	server := startService(t, ipc.Config{Protocol: serverProto, Listen: "127.0.0.1:0"})
	t.Cleanup(releaseAll) // before the services stop

	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:             plClientProto(),
		MaxActiveConnections: conns,
		PoolEvent:            events.add,
	})
	addr := server.Addr().String()

	var (
		mu             sync.Mutex
		completed      int
		errs           []error
		doneAtClose    = -1
		closeCalls     int
		closedEvAtDone int
		closed         = make(chan struct{})
	)
	for i, n := range sizes {
		err := ipc.SendRequest(client, addr, testmsg.New(i, n), 0, func(req, resp *testmsg.Message, err error) {
			mu.Lock()
			defer mu.Unlock()
			completed++
			switch {
			case err != nil:
				errs = append(errs, err)
			case resp == nil || resp.Idx != req.Idx:
				errs = append(errs, fmt.Errorf("request %d: bad response %v", req.Idx, resp))
			default:
				if err := testmsg.Verify(resp, sizes[resp.Idx]); err != nil {
					errs = append(errs, err)
				}
			}
		})
		require.NoError(t, err)
	}
	serverSig.waitFor(t, "the server to receive 2 requests", func() bool { return received.Load() >= 2 })

	require.NoError(t, client.ClosePool(addr, func() {
		ev := events.count(ipc.PoolClosed)
		mu.Lock()
		defer mu.Unlock()
		closeCalls++
		if closeCalls == 1 {
			doneAtClose, closedEvAtDone = completed, ev
			close(closed)
		}
	}))
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.True(t, st.Closing)

	var extraCalls atomic.Int32
	err := ipc.SendRequest(client, addr, testmsg.New(5, 1000), 0, func(req, resp *testmsg.Message, err error) {
		extraCalls.Add(1)
	})
	require.ErrorIs(t, err, ipc.ErrPoolClosing)
	require.ErrorIs(t, client.Send(addr, testmsg.New(6, 1000), 0, func(error) { extraCalls.Add(1) }), ipc.ErrPoolClosing)

	releaseAll()
	wait(t, closed, "the ClosePool callback")
	mu.Lock()
	require.Empty(t, errs)
	require.Equal(t, len(sizes), doneAtClose, "all requests complete before the close callback")
	require.Equal(t, 1, closedEvAtDone, "PoolClosed comes before the callback")
	require.Equal(t, 1, closeCalls)
	require.Equal(t, len(sizes), completed)
	mu.Unlock()
	require.Zero(t, extraCalls.Load(), "a rejected send completed")
	serverErrs.check(t)
	require.Equal(t, int32(len(sizes)), received.Load())
	_, ok = client.PoolStats(addr)
	require.False(t, ok, "the closed pool is forgotten")
}

// TestPoolManyAddresses: a name that resolves to 100 addresses, the first 99
// refusing connections and the real server last, with
// MaxPendingConnections 2. The pool walks the addresses with at most two
// attempts under way (Pending sampled at every pool event and resolution),
// keeps the unused addresses between attempts (the resolver is called a
// couple of times, not once per attempt), and the requests are answered.
//
// MaxActiveConnections is 4 so that the pending limit, not the active one,
// is what bounds parallel attempts; four requests are queued so that the
// pool wants more than one connection.
func TestPoolManyAddresses(t *testing.T) {
	const requests = 4
	server := startService(t, ipc.Config{Protocol: plEchoProto(nil), Listen: "127.0.0.1:0"})
	addrs := append(plClosedPorts(t, 99), server.Addr().String())

	var (
		clientP    atomic.Pointer[ipc.Service]
		maxPending plMax
		resolves   atomic.Int32
	)
	const name = "hundred.test:1"
	sample := func() {
		if c := clientP.Load(); c != nil {
			if st, ok := c.PoolStats(name); ok {
				maxPending.add(st.Pending)
			}
		}
	}
	events := newPLEvents()
	events.sample = func(ipc.PoolEvent) { sample() }
	client := startService(t, ipc.Config{
		Protocol:              plClientProto(),
		MaxActiveConnections:  4,
		MaxPendingConnections: 2,
		PoolEvent:             events.add,
		Resolver: ipc.ResolverFunc(func(ctx context.Context, n string) ([]string, error) {
			if n != name {
				return nil, fmt.Errorf("unexpected name %q", n)
			}
			resolves.Add(1)
			sample()
			return addrs, nil
		}),
	})
	clientP.Store(client)

	results := make(chan error, requests)
	for i := range requests {
		require.NoError(t, ipc.SendRequest(client, name, testmsg.New(i, 1000), 0,
			func(req, resp *testmsg.Message, err error) {
				if err == nil {
					err = testmsg.Verify(resp, 1000)
				}
				results <- err
			}))
		sample()
	}
	for i := range requests {
		select {
		case err := <-results:
			require.NoError(t, err)
		case <-time.After(deadline):
			t.Fatalf("%d of %d requests answered", i, requests)
		}
	}
	// The server may answer before the last refusing addresses fail:
	// wait for their failures rather than sampling attempts still pending.
	events.waitCount(t, ipc.PoolConnectFailed, 99)
	st, ok := client.PoolStats(name)
	require.True(t, ok)
	t.Logf("resolves %d, max pending seen %d, stats %+v", resolves.Load(), maxPending.v.Load(), st)
	require.LessOrEqual(t, maxPending.v.Load(), int64(2), "more than MaxPendingConnections attempts at once")
	require.GreaterOrEqual(t, st.DialFailures, uint64(99), "every refusing address was tried")
	require.GreaterOrEqual(t, events.count(ipc.PoolConnectFailed), 99)
	require.LessOrEqual(t, resolves.Load(), int32(3), "addresses are kept between attempts")
	require.GreaterOrEqual(t, st.Connects, uint64(1))
}

// TestPoolScaleUp: with a backlog, a pool grows one connection at a time
// (MaxPendingConnections 1) up to MaxActiveConnections 4. The server holds
// every request until released, and each connection takes at most 5
// requests (MaxResponseWait 5), so 40 queued requests keep the backlog
// above the idle connections.
func TestPoolScaleUp(t *testing.T) {
	const total, perConn, maxConns = 40, 5, 4
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }

	var received atomic.Int32
	serverSig := newPLSignal()
	serverProto := ipc.NewProtocol()
	ipc.MustRegister(serverProto, 1, func(ctx ipc.Context, m *testmsg.Message) {
		received.Add(1)
		serverSig.notify()
		go func() {
			<-release
			_ = ctx.Respond(m)
		}()
	})
	server := startService(t, ipc.Config{Protocol: serverProto, Listen: "127.0.0.1:0"})
	t.Cleanup(releaseAll)
	addr := server.Addr().String()

	var (
		clientP    atomic.Pointer[ipc.Service]
		maxPending plMax
	)
	sample := func() {
		if c := clientP.Load(); c != nil {
			if st, ok := c.PoolStats(addr); ok {
				maxPending.add(st.Pending)
			}
		}
	}
	events := newPLEvents()
	events.sample = func(ipc.PoolEvent) { sample() }
	client := startService(t, ipc.Config{
		Protocol:              plClientProto(),
		MaxActiveConnections:  maxConns,
		MaxPendingConnections: 1,
		MaxResponseWait:       perConn,
		PoolEvent:             events.add,
		ConnectionStart:       func(ipc.ConnInfo) { sample() },
	})
	clientP.Store(client)

	results := make(chan error, total)
	for i := range total {
		require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(i, 100), 0,
			func(req, resp *testmsg.Message, err error) {
				if err == nil && resp.Idx != req.Idx {
					err = fmt.Errorf("request %d answered by %d", req.Idx, resp.Idx)
				}
				results <- err
			}))
	}
	events.waitCount(t, ipc.PoolConnectionActivate, maxConns)
	serverSig.waitFor(t, "the server to hold 20 requests", func() bool { return received.Load() >= maxConns*perConn })
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, maxConns, st.Active)
	require.Zero(t, st.Pending)
	require.Equal(t, total-maxConns*perConn, st.Queued)
	require.Equal(t, uint64(maxConns), st.Dials, "no attempt beyond MaxActiveConnections")
	require.Equal(t, int32(maxConns*perConn), received.Load())
	require.LessOrEqual(t, maxPending.v.Load(), int64(1), "connections are set up one at a time")

	releaseAll()
	for i := range total {
		select {
		case err := <-results:
			require.NoError(t, err)
		case <-time.After(deadline):
			t.Fatalf("%d of %d requests answered", i, total)
		}
	}
	st, _ = client.PoolStats(addr)
	require.Equal(t, uint64(maxConns), st.Connects)
	require.Equal(t, maxConns, events.count(ipc.PoolConnectionStart))
	require.LessOrEqual(t, maxPending.v.Load(), int64(1))
}

// plHandshake is the handshake message of the passive start scenario.
type plHandshake struct{ Version uint32 }

// Serde implements serde.Type.
func (m *plHandshake) Serde(v *serde.Visitor) { v.Uint32(&m.Version) }

// TestPoolPassiveStart: connections start passive; the client's
// ConnectionStart hook sends a handshake request on the connection. A
// message queued by name waits in the pool (the passive connection does not
// take it) until the handshake response arrives and the client activates
// the connection; then it is delivered.
func TestPoolPassiveStart(t *testing.T) {
	var (
		order []string
		mu    sync.Mutex
	)
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	handshakes := make(chan ipc.Context, 1)
	serverProto := ipc.NewProtocol()
	ipc.MustRegister(serverProto, 1, func(ctx ipc.Context, m *testmsg.Message) {
		note("server: message")
		_ = ctx.Respond(m)
	})
	ipc.MustRegister(serverProto, 2, func(ctx ipc.Context, m *plHandshake) {
		note("server: handshake")
		handshakes <- ctx // the test answers it
	})
	server := startService(t, ipc.Config{Protocol: serverProto, Listen: "127.0.0.1:0"})
	addr := server.Addr().String()

	clientProto := plClientProto()
	ipc.MustRegister[plHandshake](clientProto, 2, nil)
	var (
		clientP  atomic.Pointer[ipc.Service]
		hookErrs plErrs
	)
	hsDone := make(chan error, 1)
	events := newPLEvents()
	client := startService(t, ipc.Config{
		Protocol:     clientProto,
		StartPassive: true,
		PoolEvent:    events.add,
		ConnectionStart: func(info ipc.ConnInfo) {
			err := ipc.SendRequestTo(clientP.Load(), info.Conn, &plHandshake{Version: 7}, 0,
				func(req, resp *plHandshake, err error) {
					if err == nil && resp.Version != 7 {
						err = fmt.Errorf("handshake answered with version %d", resp.Version)
					}
					if err == nil {
						note("client: handshake response")
						err = info.Conn.Activate()
					}
					hsDone <- err
				})
			if err != nil {
				hookErrs.add(err)
			}
		},
	})
	clientP.Store(client)

	result := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(3, 5000), 0,
		func(req, resp *testmsg.Message, err error) {
			if err == nil {
				note("client: response")
				err = testmsg.Verify(resp, 5000)
			}
			result <- err
		}))

	var hs ipc.Context
	select {
	case hs = <-handshakes:
	case <-time.After(deadline):
		t.Fatal("no handshake")
	}
	hookErrs.check(t)
	// The connection is open but passive: the message is still queued.
	st, ok := client.PoolStats(addr)
	require.True(t, ok)
	require.Equal(t, 1, st.Passive)
	require.Zero(t, st.Active)
	require.Equal(t, 1, st.Queued)
	require.Zero(t, events.count(ipc.PoolConnectionActivate))
	require.Equal(t, 1, events.count(ipc.PoolConnectionStart))

	require.NoError(t, hs.Respond(&plHandshake{Version: 7}))
	select {
	case err := <-hsDone:
		require.NoError(t, err)
	case <-time.After(deadline):
		t.Fatal("no handshake response")
	}
	select {
	case err := <-result:
		require.NoError(t, err)
	case <-time.After(deadline):
		t.Fatal("the queued message was never answered")
	}
	mu.Lock()
	require.Equal(t, []string{"server: handshake", "client: handshake response", "server: message", "client: response"}, order)
	mu.Unlock()
	require.Equal(t, 1, events.count(ipc.PoolConnectionActivate))
	st, _ = client.PoolStats(addr)
	require.Equal(t, 1, st.Active)
	require.Zero(t, st.Passive)
	require.Equal(t, uint64(1), st.Connects)
}

// TestSendAfterStop: once Stop has begun, every kind of send fails at once
// with ErrServiceStopped and never completes.
func TestSendAfterStop(t *testing.T) {
	server := startService(t, ipc.Config{Protocol: plEchoProto(nil), Listen: "127.0.0.1:0"})
	addr := server.Addr().String()
	conns := make(chan ipc.Conn, 1)
	client := startService(t, ipc.Config{
		Protocol:        plClientProto(),
		ConnectionStart: func(info ipc.ConnInfo) { conns <- info.Conn },
	})
	echo := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(0, 100), 0,
		func(_, _ *testmsg.Message, err error) { echo <- err }))
	select {
	case err := <-echo:
		require.NoError(t, err)
	case <-time.After(deadline):
		t.Fatal("no echo")
	}
	conn := <-conns

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, client.Stop(ctx))

	var calls atomic.Int32
	cb := func(_, _ *testmsg.Message, _ error) { calls.Add(1) }
	done := func(error) { calls.Add(1) }
	require.ErrorIs(t, client.Send(addr, testmsg.New(1, 100), 0, done), ipc.ErrServiceStopped)
	require.ErrorIs(t, ipc.SendRequest(client, addr, testmsg.New(2, 100), 0, cb), ipc.ErrServiceStopped)
	require.ErrorIs(t, ipc.SendRequest(client, "other.test:1", testmsg.New(3, 100), 0, cb), ipc.ErrServiceStopped)
	_, err := ipc.SendRequestContext(ctx, client, addr, testmsg.New(4, 100), 0, cb)
	require.ErrorIs(t, err, ipc.ErrServiceStopped)
	_, err = client.SendContext(ctx, addr, testmsg.New(5, 100), 0, done)
	require.ErrorIs(t, err, ipc.ErrServiceStopped)
	require.ErrorIs(t, client.SendTo(conn, testmsg.New(6, 100), 0, done), ipc.ErrServiceStopped)
	require.ErrorIs(t, ipc.SendRequestTo(client, conn, testmsg.New(7, 100), 0, cb), ipc.ErrServiceStopped)
	require.ErrorIs(t, client.Request(addr, testmsg.New(8, 100), 0, func(ipc.Message, error) { calls.Add(1) }), ipc.ErrServiceStopped)
	require.ErrorIs(t, client.CreatePool("new.test:1", ipc.PoolOptions{}), ipc.ErrServiceStopped)
	require.Zero(t, calls.Load())
	require.NoError(t, client.Stop(ctx), "a second Stop is a no-op")
}
