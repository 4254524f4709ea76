package main

import (
	"context"
	"sync"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// The ipcframe adapter. Settings, kept like the peers' (README): one
// connection (MaxActiveConnections 1, the default), default 4 KiB buffers,
// default loops (GOMAXPROCS per service) and busy polling, serde's string
// limit raised so the 64 MiB bulk message passes.

// Wire type ids of the benchmark protocol. Both sides use the same ids; the
// Go types differ by side: the server's embed ipc.Recyclable (received
// messages are reused, the echo answers with the request itself), the
// client's do not, because the driver reads a reply after the callback
// returned.
const (
	ipcEchoID     = 1
	ipcSinkReqID  = 2
	ipcSinkRespID = 3
)

// ipcframeMaxBody lets the 64 MiB bulk message (plus framing) through.
const ipcframeMaxBody = 256 << 20

// ipcframeStopTimeout bounds a graceful Stop at the end of a point.
const ipcframeStopTimeout = 5 * time.Second

type ipcEchoSrv struct {
	ipc.Recyclable
	Data []byte
}

type ipcEchoCli struct{ Data []byte }

type ipcSinkSrv struct {
	ipc.Recyclable
	Data []byte
}

type ipcSinkCli struct{ Data []byte }

type ipcSinkResp struct{}

func (m *ipcEchoSrv) Serde(v *serde.Visitor)  { v.Bytes(&m.Data) }
func (m *ipcEchoCli) Serde(v *serde.Visitor)  { v.Bytes(&m.Data) }
func (m *ipcSinkSrv) Serde(v *serde.Visitor)  { v.Bytes(&m.Data) }
func (m *ipcSinkCli) Serde(v *serde.Visitor)  { v.Bytes(&m.Data) }
func (m *ipcSinkResp) Serde(v *serde.Visitor) {}

func ipcConfig(server bool, listen string) ipc.Config {
	p := ipc.NewProtocol()
	if server {
		ipc.MustRegister(p, ipcEchoID, func(ctx ipc.Context, m *ipcEchoSrv) { _ = ctx.Respond(m) })
		ipc.MustRegister(p, ipcSinkReqID, func(ctx ipc.Context, m *ipcSinkSrv) { _ = ctx.Respond(&ipcSinkResp{}) })
	} else {
		ipc.MustRegister[ipcEchoCli](p, ipcEchoID, nil)
		ipc.MustRegister[ipcSinkCli](p, ipcSinkReqID, nil)
	}
	ipc.MustRegister[ipcSinkResp](p, ipcSinkRespID, nil)
	return ipc.Config{
		Protocol:          p,
		Listen:            listen,
		Limits:            serde.Limits{MaxString: ipcframeMaxBody},
		MaxQueuedMessages: 4096,
		MaxResponseWait:   1024,
		MaxReaderSlots:    64 + 1024,
	}
}

type ipcframeSystem struct{}

func init() { register(ipcframeSystem{}) }

func (ipcframeSystem) Name() string { return "ipcframe" }

func (ipcframeSystem) Serve(addr string) (string, func(), error) {
	svc, err := ipc.NewService(ipcConfig(true, addr))
	if err != nil {
		return "", nil, err
	}
	if err := svc.Start(); err != nil {
		return "", nil, err
	}
	return svc.Addr().String(), func() { ipcStop(svc) }, nil
}

func ipcStop(svc *ipc.Service) {
	ctx, cancel := context.WithTimeout(context.Background(), ipcframeStopTimeout)
	defer cancel()
	_ = svc.Stop(ctx)
}

// Dial starts a client-only service (no Listen). Its pool for addr opens
// the single connection on the first send (the warm-up covers it).
func (ipcframeSystem) Dial(addr string) (Client, error) {
	svc, err := ipc.NewService(ipcConfig(false, ""))
	if err != nil {
		return nil, err
	}
	if err := svc.Start(); err != nil {
		return nil, err
	}
	return &ipcframeClient{svc: svc, addr: addr}, nil
}

type ipcframeClient struct {
	svc  *ipc.Service
	addr string
}

// ipcCall is a reusable completion slot: the callback (on an event loop)
// fills it and signals done; the calling goroutine waits on done.
type ipcCall struct {
	done chan struct{}
	resp []byte
	err  error
	cb   func(*ipcEchoCli, *ipcEchoCli, error)
}

var ipcCalls = sync.Pool{New: func() any {
	c := &ipcCall{done: make(chan struct{}, 1)}
	c.cb = func(_ *ipcEchoCli, resp *ipcEchoCli, err error) {
		if err == nil {
			c.resp = resp.Data
		}
		c.err = err
		c.done <- struct{}{}
	}
	return c
}}

// Call is the synchronous form the driver uses. The callback must not
// block: done is buffered, so the send never does.
func (c *ipcframeClient) Call(ctx context.Context, payload []byte) ([]byte, error) {
	call := ipcCalls.Get().(*ipcCall)
	if err := ipc.SendRequest(c.svc, c.addr, &ipcEchoCli{Data: payload}, 0, call.cb); err != nil {
		ipcCalls.Put(call)
		return nil, err
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		// The callback will still run later; do not recycle the slot.
		return nil, ctx.Err()
	}
	resp, err := call.resp, call.err
	call.resp, call.err = nil, nil
	ipcCalls.Put(call)
	return resp, err
}

func (c *ipcframeClient) Sink(ctx context.Context, payload []byte) error {
	done := make(chan error, 1)
	err := ipc.SendRequest(c.svc, c.addr, &ipcSinkCli{Data: payload}, 0,
		func(_ *ipcSinkCli, _ *ipcSinkResp, err error) { done <- err })
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *ipcframeClient) Close() error {
	ipcStop(c.svc)
	return nil
}
