package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// The ipcframe adapter. Settings, kept like the peers' (README): one
// connection (MaxActiveConnections 1, the default), default 4 KiB buffers,
// default loops (GOMAXPROCS per service) and busy polling, serde's string
// limit raised so the 64 MiB bulk message passes.

// Wire type ids of the benchmark protocol.
const (
	ipcEchoID     = 1
	ipcSinkReqID  = 2
	ipcSinkRespID = 3
)

// ipcframeMaxBody lets the 64 MiB bulk message (plus framing) through.
const ipcframeMaxBody = 256 << 20

// ipcframeStopTimeout bounds a graceful Stop at the end of a point.
const ipcframeStopTimeout = 5 * time.Second

// The message types are plain structs, as the README teaches (no
// ipc.Recyclable): every received message is a new one. The echo server
// answers with the request it received.
type ipcEcho struct{ Data []byte }

type ipcSink struct{ Data []byte }

type ipcSinkResp struct{}

func (m *ipcEcho) Serde(v *serde.Visitor)     { v.Bytes(&m.Data) }
func (m *ipcSink) Serde(v *serde.Visitor)     { v.Bytes(&m.Data) }
func (m *ipcSinkResp) Serde(v *serde.Visitor) {}

// ipcConfig is the configuration of a server (listening on listen) or a
// client; with tls set, of the TLS variant (tlscert.go's certificates,
// ipc's defaults otherwise: the client keeps a session cache).
func ipcConfig(server bool, listen string, tls bool) ipc.Config {
	p := ipc.NewProtocol()
	if server {
		ipc.MustRegister(p, ipcEchoID, func(ctx ipc.Context, m *ipcEcho) { _ = ctx.Respond(m) })
		ipc.MustRegister(p, ipcSinkReqID, func(ctx ipc.Context, m *ipcSink) { _ = ctx.Respond(&ipcSinkResp{}) })
	} else {
		ipc.MustRegister[ipcEcho](p, ipcEchoID, nil)
		ipc.MustRegister[ipcSink](p, ipcSinkReqID, nil)
	}
	ipc.MustRegister[ipcSinkResp](p, ipcSinkRespID, nil)
	cfg := ipc.Config{
		Protocol:          p,
		Listen:            listen,
		Limits:            serde.Limits{MaxString: ipcframeMaxBody},
		MaxQueuedMessages: 4096,
		MaxResponseWait:   1024,
		MaxReaderSlots:    64 + 1024,
	}
	if tls && server {
		cfg.TLSServer = tlsServerConfig()
	} else if tls {
		cfg.TLSClient = tlsClientConfig(nil)
	}
	return cfg
}

// ipcframeSystem is ipcframe; with tls set ("ipcframe-tls") over TLS.
type ipcframeSystem struct{ tls bool }

func init() {
	register(ipcframeSystem{})
	register(ipcframeSystem{tls: true})
}

func (s ipcframeSystem) Name() string {
	if s.tls {
		return "ipcframe-tls"
	}
	return "ipcframe"
}

func (s ipcframeSystem) optIn() bool { return s.tls }

func (s ipcframeSystem) Serve(addr string) (string, func(), error) {
	svc, err := ipc.NewService(ipcConfig(true, addr, s.tls))
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
func (s ipcframeSystem) Dial(addr string) (Client, error) {
	svc, err := ipc.NewService(ipcConfig(false, "", s.tls))
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

// Call is ipc.Call, the blocking call the README shows first.
func (c *ipcframeClient) Call(ctx context.Context, payload []byte) ([]byte, error) {
	resp, err := ipc.Call[ipcEcho, ipcEcho](ctx, c.svc, c.addr, &ipcEcho{Data: payload}, 0)
	if err != nil {
		return nil, err
	}
	return resp.Data, nil
}

func (c *ipcframeClient) Sink(ctx context.Context, payload []byte) error {
	_, err := ipc.Call[ipcSink, ipcSinkResp](ctx, c.svc, c.addr, &ipcSink{Data: payload}, 0)
	return err
}

func (c *ipcframeClient) Close() error {
	ipcStop(c.svc)
	return nil
}

// Connector implements connector: one client service; each connect sends
// one Call to addr, which opens the pool and its connection, then closes
// the pool gracefully and waits until it is gone. ConnectionStart records
// whether the handshake resumed. Plain ipcframe runs only the full mode, as
// the reference that shows TLS's share of a connection's cost.
func (s ipcframeSystem) Connector(addr string, resume bool) (func(context.Context, []byte) (bool, error), func(), error) {
	if !s.tls && resume {
		return nil, nil, fmt.Errorf("ipcframe: resumption without TLS: %w", errUnsupported)
	}
	var resumed atomic.Bool
	cfg := ipcConfig(false, "", s.tls)
	if s.tls {
		cfg.TLSClient = tlsClientConfig(sessionCache(resume))
	}
	cfg.ConnectionStart = func(ci ipc.ConnInfo) {
		st, _ := ci.Conn.TLSState()
		resumed.Store(st.DidResume)
	}
	svc, err := ipc.NewService(cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := svc.Start(); err != nil {
		return nil, nil, err
	}
	connect := func(ctx context.Context, payload []byte) (bool, error) {
		resumed.Store(false)
		if _, err := ipc.Call[ipcEcho, ipcEcho](ctx, svc, addr, &ipcEcho{Data: payload}, 0); err != nil {
			return false, err
		}
		closed := make(chan struct{})
		if err := svc.ClosePool(addr, func() { close(closed) }); err != nil {
			return false, err
		}
		select {
		case <-closed:
		case <-ctx.Done():
			return false, context.Cause(ctx)
		}
		return resumed.Load(), nil
	}
	return connect, func() { ipcStop(svc) }, nil
}
