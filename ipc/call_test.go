package ipc_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// callMsg is a plain message (no Recyclable) for the Call tests: the
// request and its echo.
type callMsg struct {
	N    uint64
	Data []byte
}

func (m *callMsg) Serde(v *serde.Visitor) {
	v.Uint64(&m.N)
	v.Bytes(&m.Data)
}

// callOther is a registered type that is not the response Call expects.
type callOther struct{ N uint64 }

func (m *callOther) Serde(v *serde.Visitor) { v.Uint64(&m.N) }

// callPair starts a server whose handler is h and a client, both with the
// Call test protocol, and stops them at cleanup.
func callPair(t testing.TB, h func(ipc.Context, *callMsg), clientCfg ipc.Config) (server, client *ipc.Service) {
	t.Helper()
	proto := func(h func(ipc.Context, *callMsg)) *ipc.Protocol {
		p := ipc.NewProtocol()
		ipc.MustRegister(p, 1, h)
		ipc.MustRegister[callOther](p, 2, nil)
		return p
	}
	server = startCallService(t, ipc.Config{Protocol: proto(h), Listen: "127.0.0.1:0"})
	clientCfg.Protocol = proto(nil)
	client = startCallService(t, clientCfg)
	return server, client
}

// startCallService starts a service with cfg and stops it at cleanup.
func startCallService(t testing.TB, cfg ipc.Config) *ipc.Service {
	t.Helper()
	s, err := ipc.NewService(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func echoCall(ctx ipc.Context, m *callMsg) { _ = ctx.Respond(m) }

// TestCall: concurrent callers each get their own response, once.
func TestCall(t *testing.T) {
	server, client := callPair(t, echoCall, ipc.Config{})
	addr := server.Addr().String()
	const callers, perCaller = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &callMsg{}
			for i := range perCaller {
				n := uint64(g*perCaller + i)
				req.N, req.Data = n, []byte{byte(n), byte(n >> 8)}
				resp, err := ipc.Call[callMsg, callMsg](context.Background(), client, addr, req, 0)
				if err != nil {
					errs <- err
					return
				}
				if resp.N != n || len(resp.Data) != 2 || resp.Data[0] != byte(n) || resp.Data[1] != byte(n>>8) {
					errs <- errors.New("response of another request")
					return
				}
				if resp == req {
					errs <- errors.New("response is the request")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Every request completed exactly once: the client drains at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, client.Stop(ctx))
}

// TestCallErrors: errors of the send itself and an unexpected response
// type come back from Call.
func TestCallErrors(t *testing.T) {
	server, client := callPair(t, func(ctx ipc.Context, m *callMsg) {
		_ = ctx.Respond(&callOther{N: m.N})
	}, ipc.Config{})
	addr := server.Addr().String()
	ctx := context.Background()

	_, err := ipc.Call[callMsg, callMsg](ctx, client, addr, nil, 0)
	require.ErrorIs(t, err, ipc.ErrNilMessage)
	_, err = ipc.Call[callMsg, callMsg](ctx, client, "no-port", &callMsg{}, 0)
	require.ErrorIs(t, err, ipc.ErrBadName)
	_, err = ipc.Call[callMsg, callMsg](ctx, client, addr, &callMsg{N: 1}, 0)
	require.ErrorIs(t, err, ipc.ErrUnexpectedResponse)
	other, err := ipc.Call[callMsg, callOther](ctx, client, addr, &callMsg{N: 2}, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), other.N)

	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = ipc.Call[callMsg, callMsg](done, client, addr, &callMsg{}, 0)
	require.ErrorIs(t, err, ipc.ErrCanceled)
	require.ErrorIs(t, err, context.Canceled)

	_, err = ipc.CallTo[callMsg, callMsg](ctx, client, ipc.Conn{}, &callMsg{}, 0)
	require.ErrorIs(t, err, ipc.ErrConnectionGone)

	stopCtx, stopCancel := context.WithTimeout(ctx, 10*time.Second)
	defer stopCancel()
	require.NoError(t, client.Stop(stopCtx))
	_, err = ipc.Call[callMsg, callMsg](ctx, client, addr, &callMsg{}, 0)
	require.ErrorIs(t, err, ipc.ErrServiceStopped)
}

// TestCallCancel: a request whose context ends while it waits for its
// response completes once, with ErrCanceled and the context's cause; the
// response, sent later, is dropped; the next calls get their own
// responses; every request has completed once when the client stops.
func TestCallCancel(t *testing.T) {
	type heldReq struct {
		ctx ipc.Context
		n   uint64
	}
	held := make(chan heldReq, 4)
	server, client := callPair(t, func(ctx ipc.Context, m *callMsg) {
		if m.N >= 100 {
			held <- heldReq{ctx, m.N} // answered late, by the test
			return
		}
		_ = ctx.Respond(m)
	}, ipc.Config{})
	addr := server.Addr().String()

	// late calls with request n under ctx, ends ctx once the server holds
	// the request (cancel; nil for a deadline, which ends by itself), and
	// checks the error, then answers late and checks that the next call
	// gets its own response.
	late := func(n uint64, ctx context.Context, cancel func(), want error) {
		t.Helper()
		res := make(chan error, 1)
		go func() {
			_, err := ipc.Call[callMsg, callMsg](ctx, client, addr, &callMsg{N: n}, 0)
			res <- err
		}()
		var err error
		var h heldReq
	wait:
		for {
			select {
			case h = <-held:
				if h.n != n {
					// A request canceled earlier that reached the
					// server anyway: its answer is absorbed too.
					require.NoError(t, h.ctx.Respond(&callMsg{N: h.n}))
					continue
				}
				if cancel != nil {
					cancel()
				}
				err = <-res
				break wait
			case err = <-res:
				// Only a deadline ends by itself: it passed before the
				// server ran the handler.
				require.Nil(t, cancel)
				break wait
			}
		}
		require.ErrorIs(t, err, ipc.ErrCanceled)
		require.ErrorIs(t, err, want)
		if h.n == n {
			require.NoError(t, h.ctx.Respond(&callMsg{N: n}))
		}
		resp, err := ipc.Call[callMsg, callMsg](context.Background(), client, addr, &callMsg{N: n - 99}, 0)
		require.NoError(t, err)
		require.Equal(t, n-99, resp.N)
	}

	ctx, cancel := context.WithCancel(context.Background())
	late(100, ctx, cancel, context.Canceled)
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	late(101, ctx, nil, context.DeadlineExceeded)
	cause := errors.New("caller gave up")
	ctx, cancelCause := context.WithCancelCause(context.Background())
	late(102, ctx, func() { cancelCause(cause) }, cause)

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	require.NoError(t, client.Stop(stopCtx), "a request did not complete exactly once")
}

// TestCallTo: the server calls the client on the connection a request
// arrived on.
func TestCallTo(t *testing.T) {
	conns := make(chan ipc.Conn, 1)
	server, _ := callPair(t, func(ctx ipc.Context, m *callMsg) {
		conns <- ctx.Conn()
		_ = ctx.Respond(m)
	}, ipc.Config{})
	// A client that answers calls too.
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *callMsg) { m.N++; _ = ctx.Respond(m) })
	ipc.MustRegister[callOther](p, 2, nil)
	client := startCallService(t, ipc.Config{Protocol: p})

	ctx := context.Background()
	_, err := ipc.Call[callMsg, callMsg](ctx, client, server.Addr().String(), &callMsg{N: 1}, 0)
	require.NoError(t, err)
	conn := <-conns
	resp, err := ipc.CallTo[callMsg, callMsg](ctx, server, conn, &callMsg{N: 41}, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(42), resp.N)

	require.NoError(t, client.Stop(ctx))
	_, err = ipc.CallTo[callMsg, callMsg](ctx, server, conn, &callMsg{N: 1}, 0)
	require.Error(t, err)
	require.True(t, errors.Is(err, ipc.ErrConnectionGone) || errors.Is(err, ipc.ErrConnection), "got %v", err)
}

// callFixed is a plain message without slices: decoding it allocates the
// struct only.
type callFixed struct{ A, B uint64 }

func (m *callFixed) Serde(v *serde.Visitor) {
	v.Uint64(&m.A)
	v.Uint64(&m.B)
}

// TestCallAllocs: a Call through two services and a loopback socket
// allocates only the two messages the decoders create (the request on the
// server, the response on the client; plain types are never reused); the
// stub, the wake-up and everything else are pooled.
func TestCallAllocs(t *testing.T) {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *callFixed) { _ = ctx.Respond(m) })
	cp := ipc.NewProtocol()
	ipc.MustRegister[callFixed](cp, 1, nil)
	server := startCallService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0"})
	client := startCallService(t, ipc.Config{Protocol: cp})
	addr := server.Addr().String()
	ctx := context.Background()
	req := &callFixed{}
	var failed error
	call := func() {
		req.A++
		resp, err := ipc.Call[callFixed, callFixed](ctx, client, addr, req, 0)
		if err != nil || resp.A != req.A {
			failed = errors.Join(failed, err, errors.New("wrong response"))
		}
	}
	for range 200 {
		call()
	}
	allocs := testing.AllocsPerRun(2000, call)
	require.NoError(t, failed)
	t.Logf("allocations per Call: %v", allocs)
	require.LessOrEqual(t, allocs, 2.0, "allocations per Call, client and server")
}

// TestCallResponseParts: a request answered in parts returns the last
// part (ResponseLast); the parts before it are not returned.
func TestCallResponseParts(t *testing.T) {
	server, client := callPair(t, func(ctx ipc.Context, m *callMsg) {
		_ = ctx.RespondFlags(&callMsg{N: m.N + 1}, ipc.ResponsePart, nil)
		_ = ctx.RespondFlags(&callMsg{N: m.N + 2}, ipc.ResponsePart, nil)
		_ = ctx.RespondFlags(&callMsg{N: m.N + 3}, ipc.ResponseLast, nil)
	}, ipc.Config{})
	for i := range 20 {
		n := uint64(i * 10)
		resp, err := ipc.Call[callMsg, callMsg](context.Background(), client, server.Addr().String(), &callMsg{N: n}, 0)
		require.NoError(t, err)
		require.Equal(t, n+3, resp.N)
	}
}
