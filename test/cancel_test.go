package test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// Ports of SolidFrame's cancellation scenarios (clientserver_cancel_client,
// clientserver_cancel_server, clientserver_noserver), context-bound sends,
// and a stress test of cancels and closes racing completions.

// semCancelRow is one row of the clientserver_cancel_* tables.
type semCancelRow struct {
	size   int
	cancel bool
	flags  ipc.Flags
}

// semCancelClientTable is clientserver_cancel_client's table: 10 of 15 rows
// are canceled.
var semCancelClientTable = []semCancelRow{
	{100000, false, 0},
	{16384000, false, 0},
	{8192000, true, ipc.Synchronous},
	{4096000, true, 0},
	{2048000, false, 0},
	{1024000, true, 0},
	{512000, false, ipc.Synchronous},
	{256000, true, 0},
	{1280000, true, 0},
	{6400000, true, 0},
	{32000, false, 0},
	{1600000, true, 0},
	{8000000, true, 0},
	{4000000, true, 0},
	{200000, true, 0},
}

// semCancelServerTable is clientserver_cancel_server's table: the client
// table with rows 5 and 7 grown to 1724000 and 2560000.
var semCancelServerTable = func() []semCancelRow {
	t := append([]semCancelRow(nil), semCancelClientTable...)
	t[5].size, t[7].size = 1724000, 2560000
	return t
}()

// semMarker is the index of the message sent after the scenario's own: once
// the receiver has it, it has everything the sender completed before.
const semMarker = 1000

// TestClientServerCancelClient ports clientserver_cancel_client: the client
// (MaxMultiplex 6) sends the 15 one-way messages of the table with
// SendContext and cancels the 10 flagged ones as soon as the first message
// is through. Asserted: the server receives exactly the 5 unflagged ones,
// intact, and no flagged one; every send completes exactly once, the
// unflagged ones without error, the flagged ones with ErrCanceled (some
// still queued, some partly written: the server drops their partial bytes
// on CancelMessage); Cancel of a completed message is ErrUnknownMessage.
//
// The trigger differs from SolidFrame's, which cancels when the server
// receives its first message: by then the client may be far ahead of the
// server (a one-way message completes once handed to the socket, and up to
// the reactor's 4 MiB high-water mark plus the kernel's socket buffers lie
// between), and the smallest flagged message in the writer (1024000 bytes,
// one writer turn in six) finishes about 5 MB into the output: it could be
// completely written before the cancel. Here the cancel runs when the first
// message completes on the client (row 0, 100000 bytes, about 670 KB into
// the output), which precedes its receipt by the server; the cancels reach
// the writer after at most one pump quantum (1 MiB) more. To know every
// MessageID before any byte leaves, the client starts passive and
// activates its connection once the 15 sends returned.
func TestClientServerCancelClient(t *testing.T) {
	runSemCancel(t, semCancelClientTable, nil)
}

// TestClientServerCancelServer ports clientserver_cancel_server: the client
// sends one message; the server then sends the 15 messages of the table
// (rows 5 and 7 larger) to the client and cancels the flagged ones once the
// first is through. Asserted as in TestClientServerCancelClient, with the
// roles swapped.
//
// SolidFrame's server sends on the client's connection (by connection id)
// and cancels by MessageId. ipcframe's SendTo has no MessageID (there is no
// SendToContext), so here the server sends by name, through its own pool,
// to an address the client listens on, with SendContext; the cancel paths
// under test (queued, partly written, written) are the same.
func TestClientServerCancelServer(t *testing.T) {
	runSemCancel(t, semCancelServerTable, func(t *testing.T, client, server *ipc.Service, hello <-chan struct{}) {
		// The client's one message: the server starts sending when it
		// arrives.
		require.NoError(t, client.Send(server.Addr().String(), testmsg.New(semMarker+1, 100), 0, nil))
		wait(t, hello, "the client's message at the server")
	})
}

// runSemCancel runs a cancel_client/cancel_server scenario: sender sends the
// table's messages to receiver's listener and cancels the flagged ones when
// its first message completes. prepare, if set, runs first; hello is
// signaled when the sender receives a message.
func runSemCancel(t *testing.T, table []semCancelRow, prepare func(t *testing.T, receiver, sender *ipc.Service, hello <-chan struct{})) {
	n := len(table)
	var (
		mu          sync.Mutex
		ids         []ipc.MessageID
		received    = map[int]int{}
		recvErrs    []error
		completions = make([]int, n)
		sendErrs    = make([]error, n)
		cancelErrs  = map[int]error{}
		completed   = make(chan struct{})
		doneCount   int
		marker      = make(chan struct{})
		first       atomic.Bool
		sender      *ipc.Service
	)

	recvProto := ipc.NewProtocol()
	require.NoError(t, ipc.Register(recvProto, 1, func(ctx ipc.Context, m *testmsg.Message) {
		idx := int(m.Idx)
		if idx == semMarker {
			close(marker)
			return
		}
		mu.Lock()
		received[idx]++
		if idx >= n {
			recvErrs = append(recvErrs, fmt.Errorf("unexpected message %d", idx))
		} else if err := testmsg.Verify(m, table[idx].size); err != nil {
			recvErrs = append(recvErrs, err)
		}
		mu.Unlock()
	}))
	receiver := startService(t, ipc.Config{Protocol: recvProto, Listen: "127.0.0.1:0"})

	hello := make(chan struct{})
	var helloOnce sync.Once
	sendProto := ipc.NewProtocol()
	require.NoError(t, ipc.Register(sendProto, 1, func(ctx ipc.Context, m *testmsg.Message) {
		helloOnce.Do(func() { close(hello) })
	}))
	conns := make(chan ipc.Conn, 4)
	sender = startService(t, ipc.Config{
		Protocol:     sendProto,
		Listen:       "127.0.0.1:0",
		MaxMultiplex: 6,
		StartPassive: true,
		PoolEvent: func(e ipc.PoolEvent) {
			if e.Kind == ipc.PoolConnectionStart {
				conns <- e.Conn
			}
		},
	})
	if prepare != nil {
		prepare(t, receiver, sender, hello)
	}
	addr := receiver.Addr().String()

	cancelFlagged := func() {
		mu.Lock()
		toCancel := ids
		mu.Unlock()
		// Outside mu: a message still queued completes inside Cancel, and
		// its callback takes mu.
		for i, id := range toCancel {
			if table[i].cancel {
				err := sender.Cancel(id)
				mu.Lock()
				cancelErrs[i] = err
				mu.Unlock()
			}
		}
	}
	mu.Lock()
	for i, row := range table {
		id, err := sender.SendContext(context.Background(), addr, testmsg.New(i, row.size), row.flags, func(err error) {
			mu.Lock()
			completions[i]++
			sendErrs[i] = err
			if doneCount++; doneCount == n {
				close(completed)
			}
			mu.Unlock()
			if first.CompareAndSwap(false, true) {
				cancelFlagged()
			}
		})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	mu.Unlock()
	select {
	case c := <-conns:
		require.NoError(t, c.Activate())
	case <-time.After(deadline):
		t.Fatal("no connection")
	}
	wait(t, completed, "every send's completion")
	// Everything written before the marker reaches the receiver first.
	require.NoError(t, sender.Send(addr, testmsg.New(semMarker, 100), 0, nil))
	wait(t, marker, "the marker")

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, recvErrs)
	started := 0
	for i, row := range table {
		require.Equal(t, 1, completions[i], "message %d completions", i)
		if !row.cancel {
			require.NoError(t, sendErrs[i], "message %d", i)
			require.Equal(t, 1, received[i], "unflagged message %d deliveries", i)
			continue
		}
		require.NoError(t, cancelErrs[i], "Cancel of message %d", i)
		require.ErrorIs(t, sendErrs[i], ipc.ErrCanceled, "flagged message %d", i)
		require.Zero(t, received[i], "flagged message %d was delivered", i)
		var me *ipc.MessageError
		require.ErrorAs(t, sendErrs[i], &me)
		if me.Started {
			started++
		}
	}
	require.Len(t, received, 5, "exactly the 5 unflagged messages arrive")
	t.Logf("%d flagged messages canceled after they started", started)
	// A completed message is unknown to Cancel.
	require.ErrorIs(t, sender.Cancel(ids[0]), ipc.ErrUnknownMessage)
	require.ErrorIs(t, sender.Cancel(ids[2]), ipc.ErrUnknownMessage)
}

// TestCancelLargeInFlight: Cancel of a large one-way message that is being
// written takes effect while the writer is still busy with it, even when
// the connection is backed up. A small message goes first and a 32 MB one
// behind it; the server's handler, on the small one, stops reading for a
// while (it holds its loop), so the client's socket and reactor buffers
// fill; the client then cancels the large message and the server resumes.
// The message must complete with ErrCanceled after it started, and the
// server must never receive it.
func TestCancelLargeInFlight(t *testing.T) {
	const big = 32 << 20
	gotSmall := make(chan struct{})
	release := make(chan struct{})
	gotBig := make(chan struct{}, 1)
	server := startService(t, ipc.Config{
		Protocol: semClientProto(t, func(ctx ipc.Context, m *testmsg.Message) {
			switch m.Idx {
			case 0:
				close(gotSmall)
				select { // the slow reader of this scenario
				case <-release:
				case <-time.After(deadline):
				}
			case 1:
				gotBig <- struct{}{}
			}
		}),
		Listen: "127.0.0.1:0",
	})
	// Passive start: both messages are queued before the connection takes
	// any.
	conns := make(chan ipc.Conn, 1)
	client := startService(t, ipc.Config{
		Protocol:        semClientProto(t, nil),
		StartPassive:    true,
		ConnectionStart: func(ci ipc.ConnInfo) { conns <- ci.Conn },
	})
	addr := server.Addr().String()
	require.NoError(t, client.Send(addr, testmsg.New(0, 1000), 0, nil))
	errs := make(chan error, 2)
	id, err := client.SendContext(context.Background(), addr, testmsg.New(1, big), 0, func(err error) { errs <- err })
	require.NoError(t, err)
	select {
	case c := <-conns:
		require.NoError(t, c.Activate())
	case <-time.After(deadline):
		t.Fatal("no connection")
	}
	// The large message starts in the packet that ends the small one, so
	// it has started once the small one arrived; the server's loop now
	// holds, and the client's buffers fill behind it.
	wait(t, gotSmall, "the small message")
	require.NoError(t, client.Cancel(id))
	close(release)
	select {
	case err := <-errs:
		require.ErrorIs(t, err, ipc.ErrCanceled, "the cancel waited for the writer to finish the message")
		var me *ipc.MessageError
		require.ErrorAs(t, err, &me)
		require.True(t, me.Started, "%v", err)
	case <-time.After(deadline):
		t.Fatal("no completion")
	}
	// The connection carries on; the canceled message never arrives.
	echoed := make(chan struct{})
	require.NoError(t, client.Send(addr, testmsg.New(2, 1000), 0, func(error) { close(echoed) }))
	wait(t, echoed, "a later message")
	require.Len(t, gotBig, 0)
}

// semDeadAddr returns a loopback address nothing listens on, on a port no
// outgoing connection can take (fixedPortAddr), so a server can be started
// on it later.
func semDeadAddr(t testing.TB) string {
	t.Helper()
	return fixedPortAddr(t)
}

// semClientProto registers testmsg.Message (id 1) with handler h (may be
// nil).
func semClientProto(t testing.TB, h func(ipc.Context, *testmsg.Message)) *ipc.Protocol {
	t.Helper()
	p := ipc.NewProtocol()
	require.NoError(t, ipc.Register(p, 1, h))
	return p
}

// semEvents counts pool events and signals each one.
type semEvents struct {
	mu     sync.Mutex
	counts map[ipc.PoolEventKind]int
	ch     chan struct{}
}

func newSemEvents() *semEvents {
	return &semEvents{counts: map[ipc.PoolEventKind]int{}, ch: make(chan struct{}, 1)}
}

func (e *semEvents) add(ev ipc.PoolEvent) {
	e.mu.Lock()
	e.counts[ev.Kind]++
	e.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
	default:
	}
}

func (e *semEvents) count(k ipc.PoolEventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[k]
}

// waitCount waits until at least n events of kind k happened.
func (e *semEvents) waitCount(t testing.TB, k ipc.PoolEventKind, n int) {
	t.Helper()
	timeout := time.After(deadline)
	for e.count(k) < n {
		select {
		case <-e.ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %d %v events (have %d)", n, k, e.count(k))
		}
	}
}

// semResult is the outcome of one request.
type semResult struct {
	resp *testmsg.Message
	err  error
}

// TestClientServerNoServer ports clientserver_noserver: one request to an
// address nothing listens on; after at least one connection attempt has
// failed, Cancel. The callback gets ErrCanceled (never started, no
// response), exactly once; a second Cancel reports ErrUnknownMessage.
func TestClientServerNoServer(t *testing.T) {
	ev := newSemEvents()
	client := startService(t, ipc.Config{
		Protocol:     semClientProto(t, nil),
		ReconnectMin: 5 * time.Millisecond,
		ReconnectMax: 20 * time.Millisecond,
		PoolEvent:    ev.add,
	})
	addr := semDeadAddr(t)
	results := make(chan semResult, 2)
	id, err := ipc.SendRequestContext(context.Background(), client, addr, testmsg.New(0, 100000), 0,
		func(req, resp *testmsg.Message, err error) { results <- semResult{resp, err} })
	require.NoError(t, err)
	ev.waitCount(t, ipc.PoolConnectFailed, 2) // it keeps retrying
	require.NoError(t, client.Cancel(id))
	select {
	case r := <-results:
		require.Nil(t, r.resp)
		require.ErrorIs(t, r.err, ipc.ErrCanceled)
		var me *ipc.MessageError
		require.ErrorAs(t, r.err, &me)
		require.False(t, me.Started, "the message was never serialized")
	case <-time.After(deadline):
		t.Fatal("no completion")
	}
	require.ErrorIs(t, client.Cancel(id), ipc.ErrUnknownMessage)
	semStop(t, client) // quiet: a second completion would have happened by now
	require.Len(t, results, 0, "completed twice")
}

// TestSendContextCanceled: a request queued for an address nothing listens
// on completes with ErrCanceled and the context's cause when its context is
// canceled or its deadline passes; a send with a context already done fails
// at once.
func TestSendContextCanceled(t *testing.T) {
	ev := newSemEvents()
	client := startService(t, ipc.Config{
		Protocol:     semClientProto(t, nil),
		ReconnectMin: 5 * time.Millisecond,
		ReconnectMax: 20 * time.Millisecond,
		PoolEvent:    ev.add,
	})
	addr := semDeadAddr(t)
	await := func(results chan semResult) semResult {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(deadline):
			t.Fatal("no completion")
		}
		return semResult{}
	}

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		results := make(chan semResult, 2)
		id, err := ipc.SendRequestContext(ctx, client, addr, testmsg.New(0, 1000), 0,
			func(req, resp *testmsg.Message, err error) { results <- semResult{resp, err} })
		require.NoError(t, err)
		ev.waitCount(t, ipc.PoolConnectFailed, 1)
		cancel()
		r := await(results)
		require.Nil(t, r.resp)
		require.ErrorIs(t, r.err, ipc.ErrCanceled)
		require.ErrorIs(t, r.err, context.Canceled)
		require.ErrorIs(t, client.Cancel(id), ipc.ErrUnknownMessage)
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		results := make(chan semResult, 2)
		_, err := ipc.SendRequestContext(ctx, client, addr, testmsg.New(1, 1000), 0,
			func(req, resp *testmsg.Message, err error) { results <- semResult{resp, err} })
		require.NoError(t, err)
		r := await(results)
		require.ErrorIs(t, r.err, ipc.ErrCanceled)
		require.ErrorIs(t, r.err, context.DeadlineExceeded)
	})
	t.Run("one-way", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		errs := make(chan error, 2)
		_, err := client.SendContext(ctx, addr, testmsg.New(2, 1000), 0, func(err error) { errs <- err })
		require.NoError(t, err)
		cancel()
		select {
		case err := <-errs:
			require.ErrorIs(t, err, ipc.ErrCanceled)
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(deadline):
			t.Fatal("no completion")
		}
	})
	t.Run("already done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := ipc.SendRequestContext(ctx, client, addr, testmsg.New(3, 1000), 0,
			func(req, resp *testmsg.Message, err error) { t.Error("completion of a rejected send") })
		require.ErrorIs(t, err, ipc.ErrCanceled)
		require.ErrorIs(t, err, context.Canceled)
		_, err = client.SendContext(ctx, addr, testmsg.New(4, 1000), 0, func(error) { t.Error("completion of a rejected send") })
		require.ErrorIs(t, err, ipc.ErrCanceled)
	})
}

// TestCancelCloseStress races cancels, context cancels and connection
// closes against completions: 8 goroutines send 200 requests each (half
// Idempotent) to an echo server through a pool of up to 2 connections,
// canceling about one in four (by Cancel or through the context) at random
// moments, while another goroutine closes a client connection every few
// milliseconds. One request in four is "silent": Idempotent, never
// answered by the server, and canceled by the closing goroutine right
// after its next close (so cancels race closes); it can
// only complete with ErrCanceled (it is resent after a close and cannot
// succeed), so a cancel that is lost — the request sent again and left
// waiting — shows as a request that never completes or completes
// otherwise. Asserted, after the client stopped: every accepted send
// completed exactly once (per request index), every success carries the
// intact echo, every failure is ErrCanceled or ErrConnection, every silent
// request was canceled, and closes and cancels did happen.
func TestCancelCloseStress(t *testing.T) {
	const goroutines, perG, maxOut = 8, 200, 16
	silent := func(idx int) bool { return idx%4 == 0 }
	server := startService(t, ipc.Config{
		Protocol: semClientProto(t, func(ctx ipc.Context, m *testmsg.Message) {
			if m.Flags == 0 {
				_ = ctx.Respond(m)
			}
		}),
		Listen: "127.0.0.1:0",
	})
	var (
		connMu sync.Mutex
		open   = map[uint64]ipc.Conn{}
	)
	client := startService(t, ipc.Config{
		Protocol:             semClientProto(t, nil),
		MaxActiveConnections: 2,
		ReconnectMin:         time.Millisecond,
		ReconnectMax:         5 * time.Millisecond,
		ConnectionStart: func(ci ipc.ConnInfo) {
			connMu.Lock()
			open[ci.ID] = ci.Conn
			connMu.Unlock()
		},
		ConnectionStop: func(ci ipc.ConnInfo, _ error) {
			connMu.Lock()
			delete(open, ci.ID)
			connMu.Unlock()
		},
	})
	addr := server.Addr().String()
	size := func(idx int) int { return 100 + (idx*7919)%30000 }

	var (
		mu        sync.Mutex
		counts    = map[int]int{}
		results   = map[int]error{}
		bad       []error
		accepted  atomic.Int64
		completed atomic.Int64
		canceled  atomic.Int64 // completions with ErrCanceled
		connErrs  atomic.Int64
		closes    atomic.Int64
		allDone   = make(chan struct{})
		sendsOver atomic.Bool
		doneOnce  sync.Once
	)
	checkDone := func() {
		if sendsOver.Load() && completed.Load() == accepted.Load() {
			doneOnce.Do(func() { close(allDone) })
		}
	}
	type sent struct {
		id     ipc.MessageID
		cancel context.CancelFunc
	}
	var (
		quietMu sync.Mutex
		quiet   []sent // silent requests not yet canceled
	)
	cancelOne := func(rng *rand.Rand, s sent) {
		if rng.IntN(2) == 0 {
			s.cancel() // through the context
			return
		}
		if err := client.Cancel(s.id); err != nil && !errors.Is(err, ipc.ErrUnknownMessage) {
			mu.Lock()
			bad = append(bad, fmt.Errorf("Cancel: %w", err))
			mu.Unlock()
		}
	}
	stopClosing := make(chan struct{})
	closerDone := make(chan struct{})
	go func() {
		defer close(closerDone)
		rng := rand.New(rand.NewPCG(7, 7))
		for {
			select {
			case <-stopClosing:
				return
			case <-time.After(time.Duration(2+rng.IntN(4)) * time.Millisecond):
			}
			connMu.Lock()
			for _, c := range open {
				if rng.IntN(2) == 0 {
					_ = c.Close()
					closes.Add(1)
				}
				break
			}
			connMu.Unlock()
			quietMu.Lock()
			q := quiet
			quiet = nil
			quietMu.Unlock()
			for _, s := range q {
				cancelOne(rng, s)
			}
		}
	}()

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			sem := make(chan struct{}, maxOut)
			var recent []sent
			for i := range perG {
				idx := g*perG + i
				sem <- struct{}{}
				flags := ipc.Flags(0)
				if rng.IntN(2) == 0 || silent(idx) {
					flags = ipc.Idempotent
				}
				ctx, cancel := context.WithCancel(context.Background())
				cb := func(req, resp *testmsg.Message, err error) {
					cancel()
					mu.Lock()
					counts[int(req.Idx)]++
					results[int(req.Idx)] = err
					switch {
					case err == nil:
						if resp == nil || resp.Idx != req.Idx {
							bad = append(bad, fmt.Errorf("request %d: wrong response", req.Idx))
						} else if e := testmsg.Verify(resp, size(int(req.Idx))); e != nil {
							bad = append(bad, e)
						}
					case errors.Is(err, ipc.ErrCanceled):
						canceled.Add(1)
					case errors.Is(err, ipc.ErrConnection):
						connErrs.Add(1)
					default:
						bad = append(bad, fmt.Errorf("request %d: %w", req.Idx, err))
					}
					mu.Unlock()
					completed.Add(1)
					<-sem
					checkDone()
				}
				m := testmsg.New(idx, size(idx))
				if silent(idx) {
					m.Flags = 1 // the server does not answer
				}
				id, err := ipc.SendRequestContext(ctx, client, addr, m, flags, cb)
				if err != nil {
					cancel()
					<-sem
					mu.Lock()
					bad = append(bad, fmt.Errorf("send %d: %w", idx, err))
					mu.Unlock()
					continue
				}
				accepted.Add(1)
				s := sent{id, cancel}
				if silent(idx) {
					quietMu.Lock()
					quiet = append(quiet, s)
					quietMu.Unlock()
					continue
				}
				recent = append(recent, s)
				if rng.IntN(4) == 0 {
					cancelOne(rng, recent[rng.IntN(len(recent))])
				}
				if len(recent) > 32 {
					recent = recent[1:]
				}
			}
		}()
	}
	wg.Wait()
	sendsOver.Store(true)
	checkDone()
	select {
	case <-allDone:
	case <-time.After(deadline):
		t.Fatalf("%d of %d sends never completed", accepted.Load()-completed.Load(), accepted.Load())
	}
	close(stopClosing)
	<-closerDone
	semStop(t, client) // quiet: nothing can complete any more

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, bad)
	require.Equal(t, int64(goroutines*perG), accepted.Load())
	require.Len(t, counts, goroutines*perG)
	for idx, n := range counts {
		require.Equal(t, 1, n, "request %d completions", idx)
		if silent(idx) {
			require.ErrorIs(t, results[idx], ipc.ErrCanceled, "silent request %d", idx)
		}
	}
	require.NotZero(t, closes.Load(), "no connection was closed")
	require.GreaterOrEqual(t, canceled.Load(), int64(goroutines*perG/4), "fewer cancels than silent requests")
	t.Logf("%d canceled, %d connection failures, %d closes", canceled.Load(), connErrs.Load(), closes.Load())
}
