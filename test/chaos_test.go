package test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/leaktest"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The chaos suite (docs/architecture.md, "How the chaos suite works"). CI
// runs the bounded default; the long run is
//
//	go test -count=1 -run TestChaos$ -timeout 60m ./test/ -chaos.messages=1000000
var (
	chaosMessages = flag.Int("chaos.messages", 20000, "messages TestChaos sends")
	chaosSeed     = flag.Uint64("chaos.seed", 0, "TestChaos random seed; 0 picks one (logged)")
)

// chaosTick is the period of the chaos schedule: every tick kills and
// restarts the server.
const chaosTick = 200 * time.Millisecond

// chaosMinTicks spreads the messages over at least this many ticks, so
// that every run goes through that many server restarts.
const chaosMinTicks = 25

// chaosInFlight bounds the messages the load generator has sent and not
// seen completed (below MaxQueuedMessages, so no send meets ErrPoolFull).
const chaosInFlight = 256

// chaosKind is what a message is and how it is sent.
type chaosKind uint8

const (
	ckPlain       chaosKind = iota // Send, default flags
	ckOneShot                      // Send, OneShot
	ckSync                         // Send, Synchronous
	ckRequest                      // SendRequest, default flags
	ckOneShotReq                   // SendRequest, OneShot
	ckIdempotent                   // SendRequest, Idempotent: must succeed
	ckSyncIdem                     // SendRequest, Synchronous|Idempotent: must succeed
	ckCancel                       // SendRequestContext, Idempotent, then Cancel
	ckCancelPlain                  // SendContext, default flags, then Cancel
	ckDeadline                     // SendRequestContext, Idempotent, short deadline
	ckSilent                       // like ckDeadline, but the server never answers
	ckKinds
)

var chaosKindNames = [ckKinds]string{"plain", "oneshot", "sync", "request", "oneshot-request",
	"idempotent", "sync-idempotent", "cancel", "cancel-plain", "deadline", "silent"}

func (k chaosKind) String() string { return chaosKindNames[k] }

// request kinds await a response.
func (k chaosKind) request() bool {
	switch k {
	case ckPlain, ckOneShot, ckSync, ckCancelPlain:
		return false
	}
	return true
}

// idempotent kinds may reach the server several times.
func (k chaosKind) idempotent() bool {
	switch k {
	case ckIdempotent, ckSyncIdem, ckCancel, ckDeadline, ckSilent:
		return true
	}
	return false
}

// chaosMsg is the suite's message; requests are answered with a chaosMsg
// carrying the same ID. It is recyclable, so the engine's reference
// counting goes through the chaos too: a message reused while still in use
// would show as a payload that does not match its ID.
type chaosMsg struct {
	ipc.Recyclable
	ID   uint64
	Kind uint8
	Sync uint64 // position in the synchronous send order, from 1; 0 if not synchronous
	Pad  []byte
}

func (m *chaosMsg) Serde(v *serde.Visitor) {
	v.Uint64(&m.ID)
	v.Uint8(&m.Kind)
	v.Uint64(&m.Sync)
	v.Bytes(&m.Pad)
}

// chaosFill returns the payload of message id, n bytes.
func chaosFill(id uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(id + uint64(i)*7)
	}
	return b
}

// chaosIntact reports whether b is a payload of message id.
func chaosIntact(id uint64, b []byte) bool {
	for i, c := range b {
		if c != byte(id+uint64(i)*7) {
			return false
		}
	}
	return true
}

// chaosPad returns a payload size: mostly small, some spanning several
// packets, a few large enough to be cut by every fault.
func chaosPad(r *rand.Rand) int {
	switch x := r.IntN(100); {
	case x < 80:
		return r.IntN(200)
	case x < 97:
		return 4096 + r.IntN(12000)
	default:
		return 65536 + r.IntN(131072)
	}
}

// chaosPick draws a kind with the suite's mix.
func chaosPick(r *rand.Rand) chaosKind {
	weights := [ckKinds]int{ckPlain: 14, ckOneShot: 8, ckSync: 10, ckRequest: 14, ckOneShotReq: 6,
		ckIdempotent: 14, ckSyncIdem: 6, ckCancel: 8, ckCancelPlain: 6, ckDeadline: 10, ckSilent: 4}
	x := r.IntN(100)
	for k, w := range weights {
		if x < w {
			return chaosKind(k)
		}
		x -= w
	}
	return ckPlain
}

// chaosBook is the suite's bookkeeping: per message, how often it
// completed and arrived at the server, plus the rule violations seen on
// event loops (asserted on the test goroutine).
type chaosBook struct {
	kinds     []chaosKind    // written by the sender before the send
	rejected  []atomic.Bool  // the send returned an error
	completed []atomic.Int32 // completions
	arrived   []atomic.Int32 // arrivals at the server, all incarnations

	accepted, done atomic.Int64
	doneCh         chan struct{} // signaled on every completion once the load ended
	loadEnded      atomic.Bool

	outcomes [ckKinds][chaosOutcomes]atomic.Int64

	vmu        sync.Mutex
	violations []string
	nViolation int

	// synchronous order at the server, per connection of one incarnation
	smu      sync.Mutex
	lastSync map[chaosConnKey]uint64
	syncSeen int64
}

type chaosConnKey struct {
	gen int
	id  uint64
}

// Completion outcomes, counted per kind.
const (
	coOK = iota
	coConnection
	coCanceled
	coDeadline
	coRejected
	chaosOutcomes
)

var chaosOutcomeNames = [chaosOutcomes]string{"ok", "connection", "canceled", "deadline", "rejected"}

func newChaosBook(n int) *chaosBook {
	return &chaosBook{
		kinds:     make([]chaosKind, n),
		rejected:  make([]atomic.Bool, n),
		completed: make([]atomic.Int32, n),
		arrived:   make([]atomic.Int32, n),
		doneCh:    make(chan struct{}, 1),
		lastSync:  map[chaosConnKey]uint64{},
	}
}

func (b *chaosBook) violate(format string, args ...any) {
	b.vmu.Lock()
	defer b.vmu.Unlock()
	b.nViolation++
	if len(b.violations) < 20 {
		b.violations = append(b.violations, fmt.Sprintf(format, args...))
	}
}

// complete records one completion of message id and checks its outcome
// against the rules of its kind (event loop or other engine goroutine).
func (b *chaosBook) complete(id uint64, resp *chaosMsg, err error) {
	k := b.kinds[id]
	if n := b.completed[id].Add(1); n > 1 {
		b.violate("message %d (%v) completed %d times, last with %v", id, k, n, err)
	}
	var me *ipc.MessageError
	switch {
	case err == nil:
		b.outcomes[k][coOK].Add(1)
		if k.request() && (resp == nil || resp.ID != id || !chaosIntact(id, resp.Pad)) {
			b.violate("request %d (%v): wrong response", id, k)
		}
		if k == ckSilent {
			b.violate("request %d (%v) answered, but the server never answers it", id, k)
		}
	case !errors.As(err, &me):
		b.violate("message %d (%v): error %v is not a *MessageError", id, k, err)
	case errors.Is(err, ipc.ErrCanceled) && errors.Is(err, context.DeadlineExceeded):
		b.outcomes[k][coDeadline].Add(1)
		if k != ckDeadline && k != ckSilent {
			b.violate("message %d (%v) failed with a deadline it did not have: %v", id, k, err)
		}
	case errors.Is(err, ipc.ErrCanceled):
		b.outcomes[k][coCanceled].Add(1)
		if k != ckCancel && k != ckCancelPlain {
			b.violate("message %d (%v) canceled but never canceled: %v", id, k, err)
		}
	case errors.Is(err, ipc.ErrConnection):
		b.outcomes[k][coConnection].Add(1)
		if k.idempotent() {
			b.violate("idempotent message %d (%v) failed: %v", id, k, err)
		}
		if errors.Is(err, ipc.ErrServiceStopped) {
			b.violate("message %d (%v) was still pending when the client stopped: %v", id, k, err)
		}
	default:
		b.violate("message %d (%v): unexpected error %v", id, k, err)
	}
	b.done.Add(1)
	if b.loadEnded.Load() {
		select {
		case b.doneCh <- struct{}{}:
		default:
		}
	}
}

// arrive records message m at the server, on connection key.
func (b *chaosBook) arrive(key chaosConnKey, m *chaosMsg) {
	if m.ID >= uint64(len(b.arrived)) {
		b.violate("server: unknown message id %d", m.ID)
		return
	}
	if !chaosIntact(m.ID, m.Pad) {
		b.violate("server: message %d (%v) arrived with a corrupt payload", m.ID, chaosKind(m.Kind))
	}
	if n := b.arrived[m.ID].Add(1); n > 1 && !chaosKind(m.Kind).idempotent() {
		b.violate("server: message %d (%v) arrived %d times", m.ID, chaosKind(m.Kind), n)
	}
	if m.Sync == 0 {
		return
	}
	b.smu.Lock()
	last := b.lastSync[key]
	b.lastSync[key] = m.Sync
	b.syncSeen++
	b.smu.Unlock()
	if m.Sync <= last {
		b.violate("server conn %v: synchronous message #%d (id %d) after #%d", key, m.Sync, m.ID, last)
	}
}

// TestChaos sends a mix of every message kind from several goroutines
// through proxies that cut, delay, throttle, black-hole and slice the
// connections, to a server killed and restarted every 200 ms. Once the
// chaos ends and the system is quiet it asserts: every accepted send
// completed exactly once (counted per message) and no rejected send
// completed; idempotent requests all succeeded; failures are the ones each
// kind allows (one-shot and default messages: ErrConnection; canceled:
// ErrCanceled; deadlines: ErrCanceled and context.DeadlineExceeded);
// non-idempotent messages reached the server at most once; synchronous
// messages reached the server in send order on every connection; no
// payload arrived corrupt; every connection opened was closed; the
// engine's Stats agree; no goroutine leaked; the heap stayed bounded and
// came back within a bound. Sends that overlap the client's Stop must all
// complete before Stop returns nil.
func TestChaos(t *testing.T) {
	n := *chaosMessages
	seed := *chaosSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("chaos: %d messages, seed %d (rerun with -chaos.seed=%d)", n, seed, seed)
	leaks := goleak.IgnoreCurrent()
	drainN := max(n/4, 100) // sent on healed connections, while the client stops
	book := newChaosBook(n + drainN)
	heapBefore := chaosHeap()

	// The server: answers requests except "silent" ones, records arrivals.
	srv := newChaosServer(t, func(gen int) ipc.Config {
		p := ipc.NewProtocol()
		ipc.MustRegister(p, 1, func(ctx ipc.Context, m *chaosMsg) {
			book.arrive(chaosConnKey{gen, ctx.Conn().ID()}, m)
			if !ctx.IsRequest() || chaosKind(m.Kind) == ckSilent {
				return
			}
			resp := &chaosMsg{ID: m.ID, Kind: m.Kind}
			if m.ID%4 == 0 { // some answers are as large as their request
				resp.Pad = chaosFill(m.ID, len(m.Pad))
			}
			_ = ctx.Respond(resp) // fails when this incarnation is being killed
		})
		return ipc.Config{
			Protocol:          p,
			InactivityTimeout: 2 * time.Second,
			MaxKeepAlives:     -1,
		}
	})
	nw := newChaosNet(t, srv.addr)
	defer func() { _ = srv.kill(false) }()

	var (
		clientStarts, clientStops atomic.Int64
		activations               sync.WaitGroup
		activateSeed              atomic.Uint64
	)
	cp := ipc.NewProtocol()
	var strays atomic.Int64
	ipc.MustRegister(cp, 1, func(ipc.Context, *chaosMsg) { strays.Add(1) })
	client, err := ipc.NewService(ipc.Config{
		Protocol: cp,
		Resolver: ipc.ResolverFunc(nw.resolve),
		// Every attempt after a failure resolves (the current proxy), and
		// a changed answer retires the connections through other proxies.
		MinResolveInterval:   -1,
		ResolveInterval:      -1,
		MaxActiveConnections: 2,
		// Writers keep their default sizes: with room for every message
		// in flight, silent requests are written before their deadline
		// ends, so canceled requests wait in writer slots.
		DialTimeout:     time.Second,
		ReconnectMin:    5 * time.Millisecond,
		ReconnectMax:    50 * time.Millisecond,
		KeepAlive:       100 * time.Millisecond,
		DeadPeerTimeout: time.Second,
		// Connections start passive and are activated a little later, in
		// any order (a handshake's delay): an older connection may become
		// active, hence the main one, after a newer one.
		StartPassive: true,
		ConnectionStart: func(ci ipc.ConnInfo) {
			clientStarts.Add(1)
			d := time.Duration(rand.New(rand.NewPCG(seed, activateSeed.Add(1))).IntN(3000)) * time.Microsecond
			activations.Add(1)
			time.AfterFunc(d, func() { // load generation: the handshake's delay
				defer activations.Done()
				_ = ci.Conn.Activate() // fails if the connection closed first
			})
		},
		ConnectionStop: func(ipc.ConnInfo, error) { clientStops.Add(1) },
	})
	require.NoError(t, err)
	require.NoError(t, client.Start())
	clientStopped := false
	defer func() {
		if !clientStopped {
			_ = client.Stop(context.Background())
		}
	}()
	const dest = "chaos.server:1" // resolved to the current proxy

	// The chaos schedule: every tick restarts the server (alternately
	// graceful and abrupt), switches new connections to another proxy,
	// and every third tick cuts every proxied connection.
	var (
		ticks, restarts, cuts atomic.Int64
		peakHeap              uint64 // written by the chaos goroutine, read after chaosDone
		gate                  = newChaosGate()
		chaosErr              = make(chan error, 1)
		stopChaos             = make(chan struct{})
		chaosDone             = make(chan struct{})
	)
	go func() {
		defer close(chaosDone)
		defer gate.open(math.MaxInt64) // never leave a sender waiting
		r := rand.New(rand.NewPCG(seed, 1))
		tk := time.NewTicker(chaosTick)
		defer tk.Stop()
		for {
			select {
			case <-stopChaos:
				return
			case <-tk.C:
			}
			tick := ticks.Add(1)
			if err := srv.restart(tick%2 == 0); err != nil {
				chaosErr <- err
				return
			}
			restarts.Add(1)
			if r.IntN(3) == 0 {
				nw.use(0)
			} else {
				nw.use(1 + r.IntN(len(chaosFaults)-1))
			}
			if tick%3 == 0 {
				nw.cutAll()
				cuts.Add(1)
			}
			gate.open(tick)
			peakHeap = max(peakHeap, chaosHeapNow())
			if tick%100 == 0 {
				t.Logf("chaos: tick %d: %d sends accepted, %d completed", tick, book.accepted.Load(), book.done.Load())
			}
		}
	}()

	// The load: several goroutines take message ids in turn; the gate
	// releases them over at least chaosMinTicks ticks.
	load := &chaosLoad{client: client, dest: dest, book: book, seed: seed,
		inflight: make(chan struct{}, chaosInFlight), cancels: make(chan ipc.MessageID, chaosInFlight)}
	var canceler sync.WaitGroup
	canceler.Add(1)
	go func() { // cancels a little after the send
		defer canceler.Done()
		for id := range load.cancels {
			runtime.Gosched()
			_ = client.Cancel(id)
		}
	}()
	load.run(0, uint64(n), 4, func(id uint64) { gate.wait(int64(id) * chaosMinTicks / int64(n)) }, nil).Wait()
	close(load.cancels)
	load.cancels = nil
	canceler.Wait()
	close(stopChaos)
	<-chaosDone
	select {
	case err := <-chaosErr:
		t.Fatalf("chaos schedule: %v", err)
	default:
	}

	// Heal: a server, clean connections only, every faulty link cut.
	require.NoError(t, srv.start())
	nw.use(0)
	nw.cutAll()

	// Quiescence: every accepted send completes; bounded by the clock.
	book.loadEnded.Store(true)
	budget := time.After(deadline)
	for book.done.Load() < book.accepted.Load() {
		select {
		case <-book.doneCh:
		case <-budget:
			t.Fatalf("not quiet after %v: %d of %d accepted sends completed\n%s", deadline,
				book.done.Load(), book.accepted.Load(), book.pending())
		}
	}
	st, _ := client.PoolStats(dest)

	// Stop while busy: more messages are being sent when Stop begins.
	// Stop drains: it returns nil once every accepted send completed, and
	// none of them may fail because the client stopped (sends after Stop
	// began are rejected with ErrServiceStopped).
	most := make(chan struct{})
	drain := load.run(uint64(n), uint64(n+drainN), 2, nil, func(id uint64) {
		if id == uint64(n+drainN*3/4) {
			close(most)
		}
	})
	select {
	case <-most:
	case <-time.After(deadline):
		st, _ := client.PoolStats(dest)
		t.Fatalf("healed connections stalled: %d of %d sends completed after %v; pool %+v\n%s",
			book.done.Load(), book.accepted.Load(), deadline, st, book.pending())
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	load.stopping.Store(true)
	require.NoError(t, client.Stop(ctx), "client Stop: the in-flight count did not drain")
	clientStopped = true
	drain.Wait()
	require.Equal(t, book.accepted.Load(), book.done.Load(), "completions when Stop returned")
	activations.Wait()
	require.NoError(t, srv.kill(true))
	nw.stop()
	cs := client.Stats()

	t.Logf("chaos: %d ticks, %d server restarts, %d cuts; client pool %+v; proxies used:%s",
		ticks.Load(), restarts.Load(), cuts.Load(), st, nw.usage())
	t.Logf("chaos: connections client %d/%d, server %d/%d (opened/closed); %d synchronous arrivals checked; %d stray responses",
		clientStarts.Load(), clientStops.Load(), srv.starts.Load(), srv.stops.Load(), book.syncSeen, strays.Load())
	t.Log("chaos: outcomes per kind\n" + book.table())
	t.Logf("chaos: peak heap during the chaos %d KiB (live and garbage)", peakHeap>>10)

	// Exactly once, per message.
	var missing, dup, lateRejected []uint64
	for id := range n + drainN {
		c := book.completed[id].Load()
		switch {
		case book.rejected[id].Load() && c != 0:
			lateRejected = append(lateRejected, uint64(id))
		case book.rejected[id].Load():
		case c == 0:
			missing = append(missing, uint64(id))
		case c > 1:
			dup = append(dup, uint64(id))
		}
	}
	require.Empty(t, missing, "messages never completed (%d)", len(missing))
	require.Empty(t, dup, "messages completed more than once (%d)", len(dup))
	require.Empty(t, lateRejected, "rejected sends completed (%d)", len(lateRejected))
	book.vmu.Lock()
	require.Zero(t, book.nViolation, "rule violations (first %d):\n%s", len(book.violations), strings.Join(book.violations, "\n"))
	book.vmu.Unlock()

	// The chaos happened: restarts, cuts, failures of every kind that can
	// fail, resent idempotent requests, cancels and deadlines that won.
	require.GreaterOrEqual(t, restarts.Load(), int64(chaosMinTicks-1), "server restarts")
	require.Positive(t, cuts.Load(), "proxy cuts")
	require.Positive(t, clientStops.Load(), "client connections lost")
	require.Positive(t, book.outcomes[ckOneShot][coConnection].Load()+book.outcomes[ckOneShotReq][coConnection].Load(), "one-shot failures")
	require.Positive(t, book.outcomes[ckCancel][coCanceled].Load()+book.outcomes[ckCancelPlain][coCanceled].Load(), "cancels")
	require.Positive(t, book.outcomes[ckDeadline][coDeadline].Load(), "deadlines")
	require.Positive(t, book.outcomes[ckSilent][coDeadline].Load(), "silent requests ended by their deadline")
	resent := 0
	for id := range n {
		if book.kinds[id].idempotent() && book.arrived[id].Load() > 1 {
			resent++
		}
	}
	require.Positive(t, resent, "idempotent messages that reached the server twice")
	require.Positive(t, book.syncSeen, "synchronous arrivals")

	// The engine's own counters agree with the book, and nothing is left.
	var want ipc.Completions
	for k := range ckKinds {
		want.OK += uint64(book.outcomes[k][coOK].Load())
		want.Canceled += uint64(book.outcomes[k][coCanceled].Load() + book.outcomes[k][coDeadline].Load())
		want.Connection += uint64(book.outcomes[k][coConnection].Load())
	}
	require.Equal(t, want, cs.Completions, "client Stats completions vs the per-message count")
	require.Zero(t, cs.InFlight, "client Stats in flight after Stop")
	require.Empty(t, cs.Conns, "client connections listed after Stop")
	require.Zero(t, cs.Connections.Open(), "client connections open after Stop: %+v", cs.Connections)
	srv.lmu.Lock()
	require.Empty(t, srv.leftovers, "stopped server incarnations")
	srv.lmu.Unlock()

	// Nothing left behind.
	require.Equal(t, clientStarts.Load(), clientStops.Load(), "client connections opened vs closed")
	require.Equal(t, srv.starts.Load(), srv.stops.Load(), "server connections opened vs closed")
	goleak.VerifyNone(t, append(leaktest.Ignore(), leaks)...)
	heapAfter := chaosHeap()
	t.Logf("chaos: heap %d KiB before, %d KiB after quiescence", heapBefore>>10, heapAfter>>10)
	require.Less(t, heapAfter, heapBefore+chaosHeapSlack, "heap after quiescence")
	require.Less(t, peakHeap, uint64(chaosPeakHeap), "heap during the chaos")
}

// chaosHeapSlack bounds the heap growth from before the run to after it
// (the bookkeeping tables are allocated before the first measure).
const chaosHeapSlack = 32 << 20

// chaosPeakHeap bounds the heap (live objects and garbage not yet
// collected) sampled at every tick: at most 256 messages of at most 196
// KiB are in flight.
const chaosPeakHeap = 256 << 20

// chaosHeapNow returns the bytes of heap objects, live or not yet
// collected, without stopping the world.
func chaosHeapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// chaosHeap returns the live heap after collecting twice (sync.Pool
// contents survive one collection).
func chaosHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// chaosLoad is the load generator.
type chaosLoad struct {
	client   *ipc.Service
	dest     string
	book     *chaosBook
	seed     uint64
	inflight chan struct{}      // one token per message sent and not completed
	cancels  chan ipc.MessageID // to the canceler goroutine; nil: cancel inline
	stopping atomic.Bool        // Stop begins: sends may be rejected with ErrServiceStopped

	syncMu   sync.Mutex // orders synchronous sends: Sync numbers follow send order
	syncNext uint64
}

// run sends messages from to to-1 from workers goroutines; before each
// send it calls before (if not nil), after each after (if not nil).
func (l *chaosLoad) run(from, to uint64, workers int, before, after func(id uint64)) *sync.WaitGroup {
	var wg sync.WaitGroup
	var next atomic.Uint64
	next.Store(from)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(l.seed, from+uint64(w)+2))
			for {
				id := next.Add(1) - 1
				if id >= to {
					return
				}
				if before != nil {
					before(id)
				}
				l.inflight <- struct{}{}
				l.send(r, id)
				if after != nil {
					after(id)
				}
			}
		}()
	}
	return &wg
}

// send sends message id with a kind drawn from r and records the outcome
// in the book. The inflight token taken by the caller is given back at
// completion (or at once if the send is rejected).
func (l *chaosLoad) send(r *rand.Rand, id uint64) {
	client, dest, book, inflight := l.client, l.dest, l.book, l.inflight
	k := chaosPick(r)
	book.kinds[id] = k
	m := &chaosMsg{ID: id, Kind: uint8(k), Pad: chaosFill(id, chaosPad(r))}
	oneway := func(err error) {
		book.complete(id, nil, err)
		<-inflight
	}
	reply := func(_, resp *chaosMsg, err error) {
		book.complete(id, resp, err)
		<-inflight
	}
	var (
		err   error
		msgID ipc.MessageID
	)
	book.accepted.Add(1)
	switch k {
	case ckPlain:
		err = client.Send(dest, m, 0, oneway)
	case ckOneShot:
		err = client.Send(dest, m, ipc.OneShot, oneway)
	case ckSync, ckSyncIdem:
		l.syncMu.Lock()
		l.syncNext++
		m.Sync = l.syncNext
		if k == ckSync {
			err = client.Send(dest, m, ipc.Synchronous, oneway)
		} else {
			err = ipc.SendRequest(client, dest, m, ipc.Synchronous|ipc.Idempotent, reply)
		}
		if err != nil {
			l.syncNext-- // the number is free again: order is checked on arrivals
		}
		l.syncMu.Unlock()
	case ckRequest:
		err = ipc.SendRequest(client, dest, m, 0, reply)
	case ckOneShotReq:
		err = ipc.SendRequest(client, dest, m, ipc.OneShot, reply)
	case ckIdempotent:
		err = ipc.SendRequest(client, dest, m, ipc.Idempotent, reply)
	case ckCancel:
		msgID, err = ipc.SendRequestContext(context.Background(), client, dest, m, ipc.Idempotent, reply)
	case ckCancelPlain:
		msgID, err = client.SendContext(context.Background(), dest, m, 0, oneway)
	case ckDeadline, ckSilent:
		d := time.Duration(1+r.IntN(20)) * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), d)
		msgID, err = ipc.SendRequestContext(ctx, client, dest, m, ipc.Idempotent, func(req, resp *chaosMsg, err error) {
			cancel()
			reply(req, resp, err)
		})
		if err != nil {
			cancel()
		}
	}
	if err != nil {
		book.accepted.Add(-1)
		book.rejected[id].Store(true)
		book.outcomes[k][coRejected].Add(1)
		<-inflight
		expired := (k == ckDeadline || k == ckSilent) && errors.Is(err, ipc.ErrCanceled)
		stopped := l.stopping.Load() && errors.Is(err, ipc.ErrServiceStopped)
		if !expired && !stopped {
			book.violate("send %d (%v) rejected: %v", id, k, err)
		}
		return
	}
	if msgID.Valid() && (k == ckCancel || k == ckCancelPlain) {
		if r.IntN(2) == 0 || l.cancels == nil {
			_ = client.Cancel(msgID)
		} else {
			l.cancels <- msgID
		}
	}
}

// pending lists the messages not yet completed, by kind, for a failure
// report.
func (b *chaosBook) pending() string {
	var per [ckKinds]int
	var first []string
	for id := range b.kinds {
		if b.rejected[id].Load() || b.completed[id].Load() != 0 {
			continue
		}
		per[b.kinds[id]]++
		if len(first) < 10 {
			first = append(first, fmt.Sprintf("%d(%v, arrived %d)", id, b.kinds[id], b.arrived[id].Load()))
		}
	}
	var s strings.Builder
	for k, c := range per {
		if c > 0 {
			fmt.Fprintf(&s, "  %v: %d pending\n", chaosKind(k), c)
		}
	}
	fmt.Fprintf(&s, "  first: %s", strings.Join(first, " "))
	return s.String()
}

// table prints the outcome counts per kind.
func (b *chaosBook) table() string {
	var s strings.Builder
	fmt.Fprintf(&s, "  %-16s", "kind")
	for _, o := range chaosOutcomeNames {
		fmt.Fprintf(&s, "%11s", o)
	}
	s.WriteString("\n")
	for k := range ckKinds {
		fmt.Fprintf(&s, "  %-16v", k)
		for o := range chaosOutcomes {
			fmt.Fprintf(&s, "%11d", b.outcomes[k][o].Load())
		}
		s.WriteString("\n")
	}
	return s.String()
}

// chaosGate releases message ids tick by tick: wait(k) returns once tick
// k has passed.
type chaosGate struct {
	mu   sync.Mutex
	tick int64
	ch   chan struct{} // closed at the next tick
}

func newChaosGate() *chaosGate { return &chaosGate{ch: make(chan struct{})} }

func (g *chaosGate) open(tick int64) {
	g.mu.Lock()
	g.tick = tick
	close(g.ch)
	g.ch = make(chan struct{})
	g.mu.Unlock()
}

func (g *chaosGate) wait(k int64) {
	for {
		g.mu.Lock()
		ok, ch := g.tick >= k, g.ch
		g.mu.Unlock()
		if ok {
			return
		}
		<-ch
	}
}
