package test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// Versioning scenarios, ported from SolidFrame mprpc's
// clientserver_basic_versioning and clientserver_versioning (design §2.9
// and §6).
//
// SolidFrame has no protocol-level version negotiation: a message type
// carries its own version (serde.Versioned here), and an application
// builds a connection-level handshake out of ordinary messages sent while
// the connection is still passive. The tests do exactly that with the
// existing API: Config.StartPassive, the ConnectionStart hook,
// SendRequestTo on the new connection and Conn.Activate. The peer's
// version is application state kept by connection id (vsPeers): ipc needs
// no per-connection storage for it.
//
// Identifiers of this file start with "vs".

// vsMessage is clientserver_basic_versioning's message: its version is
// chosen per message by the sender (ver), and the receiver decodes the
// fields that version has. From version 2 it carries Inner, a nested
// struct with its own version.
type vsMessage struct {
	Idx   uint32
	Str   []byte
	Inner vsInner // from version 2
	ver   uint32  // the version to write (sender) or read (receiver)
}

// SerdeVersion implements serde.Versioned.
func (m *vsMessage) SerdeVersion() uint32 { return m.ver }

// Serde implements serde.Type.
func (m *vsMessage) Serde(v *serde.Visitor) {
	if v.Decoding() {
		m.ver = v.Version()
	}
	v.Uint32(&m.Idx)
	v.Bytes(&m.Str)
	if v.Version() >= 2 {
		v.Struct(&m.Inner)
	}
}

// vsInner is vsMessage's nested field: version 1 has Seq, version 2 adds
// Note.
type vsInner struct {
	Seq  uint64
	Note string // from version 2
	ver  uint32
}

// SerdeVersion implements serde.Versioned.
func (m *vsInner) SerdeVersion() uint32 { return m.ver }

// Serde implements serde.Type.
func (m *vsInner) Serde(v *serde.Visitor) {
	if v.Decoding() {
		m.ver = v.Version()
	}
	v.Uint64(&m.Seq)
	if v.Version() >= 2 {
		v.String(&m.Note)
	}
}

// vsNew returns message idx of the basic scenario: versions 1 and 2
// alternate, and a version-2 message's Inner alternates between its
// versions 1 and 2, so every combination crosses the wire.
func vsNew(idx int) *vsMessage {
	m := &vsMessage{Idx: uint32(idx), ver: 1 + uint32(idx%2)}
	m.Str = testmsg.Payload(idx, testmsg.Table15[idx%len(testmsg.Table15)])
	if m.ver >= 2 {
		m.Inner = vsInner{Seq: uint64(idx) * 7, ver: 1 + uint32(idx/2%2)}
		if m.Inner.ver >= 2 {
			m.Inner.Note = fmt.Sprintf("note %d", idx)
		}
	}
	return m
}

// vsCheck reports how m, as decoded, differs from message idx.
func vsCheck(m *vsMessage, idx int) error {
	want := vsNew(idx)
	if m.ver != want.ver || m.Idx != want.Idx || m.Inner != want.Inner {
		return fmt.Errorf("message %d decoded as version %d idx %d inner %+v, want version %d inner %+v",
			idx, m.ver, m.Idx, m.Inner, want.ver, want.Inner)
	}
	return testmsg.Check(idx, testmsg.Table15[idx%len(testmsg.Table15)], m.Str)
}

// TestClientServerBasicVersioning ports clientserver_basic_versioning 8:
// the basic scenario (150 requests, 10 in flight, each response triggers
// one more) over 8 connections, with a versioned message whose nested
// field is decoded by its own version. The server echoes each message as
// it decoded it, so the response is written with the request's versions.
// Every request completes exactly once, checked once the client stopped.
// Under the race detector it sends 30 (every size of Table15 with both
// message versions, both versions of the nested field), as
// TestClientServerBasic does with more than one connection: 150 cost about
// 60 s of CI's time there, the detector's shadow memory for the bytes
// copied (twelfth session's profile of TestClientServerBasic).
func TestClientServerBasicVersioning(t *testing.T) {
	const initial, conns = 10, 8
	total := 150
	if raceEnabled {
		total = 30
	}

	var serverErrs plErrs
	serverProto := ipc.NewProtocol()
	ipc.MustRegister(serverProto, 1, func(ctx ipc.Context, m *vsMessage) {
		if err := vsCheck(m, int(m.Idx)); err != nil {
			serverErrs.add(err)
		}
		if err := ctx.Respond(m); err != nil {
			serverErrs.add(err)
		}
	})
	clientProto := ipc.NewProtocol()
	ipc.MustRegister[vsMessage](clientProto, 1, nil)
	server := startService(t, ipc.Config{Protocol: serverProto, Listen: "127.0.0.1:0"})
	client := startService(t, ipc.Config{Protocol: clientProto, MaxActiveConnections: conns})
	addr := server.Addr().String()

	var (
		mu     sync.Mutex
		sent   int
		counts = map[uint32]int{}
		errs   plErrs
		done   = make(chan struct{})
	)
	var send func() // mu held
	cb := func(req, resp *vsMessage, err error) {
		mu.Lock()
		defer mu.Unlock()
		counts[req.Idx]++
		if err == nil {
			err = vsCheck(resp, int(req.Idx))
		}
		if err != nil {
			errs.add(fmt.Errorf("request %d: %w", req.Idx, err))
		}
		if sent < total {
			send()
		}
		if len(counts) == total && counts[req.Idx] == 1 {
			close(done)
		}
	}
	send = func() {
		idx := sent
		sent++
		if err := ipc.SendRequest(client, addr, vsNew(idx), 0, cb); err != nil {
			errs.add(fmt.Errorf("send %d: %w", idx, err))
		}
	}
	mu.Lock()
	for range initial {
		send()
	}
	mu.Unlock()
	wait(t, done, "150 versioned echoes")

	semStop(t, client) // quiet: nothing can complete any more
	errs.check(t)
	serverErrs.check(t)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, counts, total)
	for idx := range total {
		require.Equal(t, 1, counts[uint32(idx)], "request %d completions", idx)
	}
}

// vsVersion is a protocol version, major.minor.
type vsVersion struct{ Major, Minor uint32 }

func (v vsVersion) less(o vsVersion) bool {
	return v.Major < o.Major || v.Major == o.Major && v.Minor < o.Minor
}

func (v vsVersion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// vsServerVersion is the server's protocol version.
var vsServerVersion = vsVersion{1, 2}

// vsInit is the handshake: the client's InitRequest carries its version,
// the server's InitResponse carries its own and Error 0 (accepted) or 1
// (the client is newer than the server).
type vsInit struct {
	Version vsVersion
	Error   uint32
}

// Serde implements serde.Type.
func (m *vsInit) Serde(v *serde.Visitor) {
	v.Uint32(&m.Version.Major)
	v.Uint32(&m.Version.Minor)
	v.Uint32(&m.Error)
}

// vsRequest is the application request of protocol 1.0 (its version 1,
// no Value) and 1.1 (its version 2, with Value).
type vsRequest struct {
	Value uint32 // from version 2
	ver   uint32
}

// SerdeVersion implements serde.Versioned.
func (m *vsRequest) SerdeVersion() uint32 { return m.ver }

// Serde implements serde.Type.
func (m *vsRequest) Serde(v *serde.Visitor) {
	if v.Decoding() {
		m.ver = v.Version()
	}
	if v.Version() >= 2 {
		v.Uint32(&m.Value)
	}
}

// vsResponse answers vsRequest, in the request's version: version 1
// carries Error; version 2 adds Echo, the request's Value.
type vsResponse struct {
	Error uint32
	Echo  uint32 // from version 2
	ver   uint32
}

// SerdeVersion implements serde.Versioned.
func (m *vsResponse) SerdeVersion() uint32 { return m.ver }

// Serde implements serde.Type.
func (m *vsResponse) Serde(v *serde.Visitor) {
	if v.Decoding() {
		m.ver = v.Version()
	}
	v.Uint32(&m.Error)
	if v.Version() >= 2 {
		v.Uint32(&m.Echo)
	}
}

// vsRequest2 and vsResponse2 are new in protocol 1.2.
type vsRequest2 struct{ Str string }

// Serde implements serde.Type.
func (m *vsRequest2) Serde(v *serde.Visitor) { v.String(&m.Str) }

type vsResponse2 struct{ Error uint32 }

// Serde implements serde.Type.
func (m *vsResponse2) Serde(v *serde.Visitor) { v.Uint32(&m.Error) }

// Type ids of the versioning protocol.
const (
	vsInitID = iota + 1
	vsRequestID
	vsResponseID
	vsRequest2ID
	vsResponse2ID
)

// vsPeers is the application's per-connection state: the peer version of
// each connection that completed the handshake, by connection id.
type vsPeers struct {
	mu sync.Mutex
	m  map[uint64]vsVersion
}

func (p *vsPeers) set(c ipc.Conn, v vsVersion) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[uint64]vsVersion{}
	}
	p.m[c.ID()] = v
}

func (p *vsPeers) get(c ipc.Conn) (vsVersion, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[c.ID()]
	return v, ok
}

// all returns the recorded versions, in no order.
func (p *vsPeers) all() []vsVersion {
	p.mu.Lock()
	defer p.mu.Unlock()
	var vs []vsVersion
	for _, v := range p.m {
		vs = append(vs, v)
	}
	return vs
}

// vsClient is one client of TestClientServerVersioning and what it saw.
type vsClient struct {
	version  vsVersion
	svc      *ipc.Service
	peers    vsPeers      // the server's version, once accepted
	inits    atomic.Int32 // InitResponses received
	rejected atomic.Int32 // of which Error != 0
	errs     plErrs
	done     chan struct{} // closed when the application request completed
	count    atomic.Int32  // completions of the application request
	result   any           // the response, or the error (written before done)
}

// TestClientServerVersioning ports clientserver_versioning: a server of
// protocol 1.2 and clients of 1.0, 1.1, 1.2 and 1.3, all starting passive.
// On connect each client sends an InitRequest with its version to the new
// connection. The server rejects a newer client (Error 1, then closes the
// connection gracefully with CloseAfter) and accepts the others (Error 0),
// remembering each peer's version; an accepted client remembers the
// server's version and activates its connection, while a rejected one
// aborts its pool. Each client queued one request by name before the
// handshake; it goes out only once the connection is active, and the
// server answers according to the peer's version:
//
//   - 1.0 sends vsRequest version 1 and gets vsResponse version 1, Error 10;
//   - 1.1 sends vsRequest version 2 (Value 11) and gets vsResponse
//     version 2 with Error and Echo 11;
//   - 1.2 sends vsRequest2{"test"} and gets vsResponse2 with Error 4;
//   - 1.3's request completes once, with an error and no response.
//
// Every accepted side sees its peer's version (1.2 on the clients, its
// own on the server).
func TestClientServerVersioning(t *testing.T) {
	srv := vsStartServer(t)
	serverPeers, serverErrs, serverInits := &srv.peers, &srv.errs, &srv.inits
	addr := srv.svc.Addr().String()

	var clients []*vsClient
	for minor := range uint32(4) {
		clients = append(clients, vsStartClient(t, addr, vsVersion{1, minor}))
	}
	for _, c := range clients {
		wait(t, c.done, fmt.Sprintf("the request of client %v", c.version))
	}
	for _, c := range clients {
		semStop(t, c.svc) // quiet: nothing more can complete
	}
	serverErrs.check(t)
	for _, c := range clients {
		c.errs.check(t)
		require.Equal(t, int32(1), c.count.Load(), "client %v: request completions", c.version)
		require.GreaterOrEqual(t, c.inits.Load(), int32(1), "client %v: no handshake", c.version)
		switch c.version.Minor {
		case 0:
			require.Equal(t, &vsResponse{Error: 10, ver: 1}, c.result)
		case 1:
			require.Equal(t, &vsResponse{Error: 11, Echo: 11, ver: 2}, c.result)
		case 2:
			require.Equal(t, &vsResponse2{Error: 4}, c.result)
		case 3:
			err, _ := c.result.(error)
			require.ErrorIs(t, err, ipc.ErrConnection, "client 1.3's request: %v", c.result)
			require.ErrorIs(t, err, ipc.ErrPoolClosed)
			require.Equal(t, c.inits.Load(), c.rejected.Load(), "client 1.3 accepted")
			require.Empty(t, c.peers.all(), "client 1.3 recorded a peer version")
			continue
		}
		require.Zero(t, c.rejected.Load(), "client %v rejected", c.version)
		require.Len(t, c.peers.all(), 1, "client %v: accepted connections", c.version)
		for _, v := range c.peers.all() {
			require.Equal(t, vsServerVersion, v, "client %v: the server's version", c.version)
		}
	}
	// The server saw every accepted client's version on its connection.
	require.ElementsMatch(t, []vsVersion{{1, 0}, {1, 1}, {1, 2}}, serverPeers.all())
	require.Equal(t, int32(3)+clients[3].inits.Load(), serverInits.Load())
	for _, err := range srv.stops.list() {
		require.NotErrorIs(t, err, errVsHandshake)
	}
}

// TestClientServerVersioningWrongFirst: a client whose first message on a
// new connection is an application request, not the InitRequest. The
// server closes only that connection, with the application's error
// (Conn.CloseWithError, errVsHandshake); a well-behaved 1.2 client
// connected at the same time is served normally. The misbehaving client's
// early request fails once with ErrConnection, and on that failure it
// aborts its pool: the three requests it had queued by name (never sent,
// the connection was still passive) each fail exactly once with
// ErrPoolClosed.
func TestClientServerVersioningWrongFirst(t *testing.T) {
	srv := vsStartServer(t)
	addr := srv.svc.Addr().String()
	good := vsStartClient(t, addr, vsVersion{1, 2})

	var (
		mu      sync.Mutex
		results = map[string][]error{}
		errs    plErrs
		all     = make(chan struct{})
		bad     *ipc.Service
	)
	record := func(name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		results[name] = append(results[name], err)
		if len(results) == 4 && len(results[name]) == 1 {
			close(all)
		}
	}
	bad = startService(t, ipc.Config{
		Protocol:     vsClientProto(vsVersion{1, 2}),
		StartPassive: true,
		ReconnectMin: time.Hour, ReconnectMax: time.Hour, // no second connection
		ConnectionStart: func(info ipc.ConnInfo) {
			err := ipc.SendRequestTo(bad, info.Conn, &vsRequest2{Str: "early"}, 0,
				func(_ *vsRequest2, resp *vsResponse2, err error) {
					if resp != nil {
						err = errors.New("a response to a request before the handshake")
					}
					record("early", err)
					if err := bad.AbortPool(info.Pool, nil); err != nil {
						errs.add(err)
					}
				})
			if err != nil {
				errs.add(err)
			}
		},
	})
	for i := range 3 {
		name := fmt.Sprintf("queued %d", i)
		require.NoError(t, ipc.SendRequest(bad, addr, &vsRequest2{Str: name}, 0,
			func(_ *vsRequest2, resp *vsResponse2, err error) {
				if resp != nil {
					err = errors.New("a response through a passive connection")
				}
				record(name, err)
			}))
	}
	wait(t, all, "the misbehaving client's four requests")
	wait(t, good.done, "the good client's request")
	refused := srv.stops.first(t, "the server to close the misbehaving connection")
	semStop(t, bad)
	semStop(t, good.svc)

	errs.check(t)
	good.errs.check(t)
	srv.errs.check(t)
	require.Equal(t, &vsResponse2{Error: 4}, good.result)
	require.Equal(t, int32(1), good.count.Load())
	require.ErrorIs(t, refused, errVsHandshake)
	require.ErrorIs(t, refused, ipc.ErrConnectionClosed)
	var ce *ipc.ConnError
	require.ErrorAs(t, refused, &ce)
	handshakeStops := 0
	for _, err := range srv.stops.list() {
		if errors.Is(err, errVsHandshake) {
			handshakeStops++
		}
	}
	require.Equal(t, 1, handshakeStops, "connections closed for the handshake")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, results, 4)
	for name, got := range results {
		require.Len(t, got, 1, "%s completions", name)
		require.ErrorIs(t, got[0], ipc.ErrConnection, name)
		if name != "early" {
			require.ErrorIs(t, got[0], ipc.ErrPoolClosed, name)
		}
	}
}

// errVsHandshake is the application's error for a peer that sends
// something else before its InitRequest.
var errVsHandshake = errors.New("version handshake: wrong first message")

// vsServer is the protocol 1.2 server of the versioning scenarios.
type vsServer struct {
	svc   *ipc.Service
	peers vsPeers // the version of each peer that completed the handshake
	errs  plErrs
	inits atomic.Int32 // InitRequests received
	stops *kaStops     // ConnectionStop errors
}

// refuse closes the connection of a message that came before the
// handshake, with errVsHandshake.
func (s *vsServer) refuse(ctx ipc.Context, m ipc.Message) {
	if err := ctx.Conn().CloseWithError(fmt.Errorf("%w: %T before InitRequest", errVsHandshake, m)); err != nil {
		s.errs.add(err)
	}
}

// vsStartServer starts the server: it answers InitRequests (refusing
// newer peers), then vsRequest and vsRequest2 by the peer's version, and
// closes a connection whose first message is not an InitRequest.
func vsStartServer(t *testing.T) *vsServer {
	srv := &vsServer{stops: newKAStops()}
	serverProto := ipc.NewProtocol()
	ipc.MustRegister(serverProto, vsInitID, func(ctx ipc.Context, m *vsInit) {
		srv.inits.Add(1)
		if vsServerVersion.less(m.Version) {
			// Refuse, and close this connection once the answer is out.
			err := ctx.RespondFlags(&vsInit{Version: vsServerVersion, Error: 1}, ipc.CloseAfter, nil)
			if err != nil {
				srv.errs.add(err)
			}
			return
		}
		srv.peers.set(ctx.Conn(), m.Version)
		if err := ctx.Respond(&vsInit{Version: vsServerVersion}); err != nil {
			srv.errs.add(err)
		}
	})
	ipc.MustRegister(serverProto, vsRequestID, func(ctx ipc.Context, m *vsRequest) {
		peer, ok := srv.peers.get(ctx.Conn())
		var resp *vsResponse
		switch {
		case !ok:
			srv.refuse(ctx, m)
			return
		case peer == vsVersion{1, 0} && m.ver == 1:
			resp = &vsResponse{Error: 10, ver: 1}
		case peer == vsVersion{1, 1} && m.ver == 2:
			resp = &vsResponse{Error: 11, Echo: m.Value, ver: 2}
		default:
			srv.errs.add(fmt.Errorf("vsRequest version %d from a %v peer", m.ver, peer))
			return
		}
		if err := ctx.Respond(resp); err != nil {
			srv.errs.add(err)
		}
	})
	ipc.MustRegister[vsResponse](serverProto, vsResponseID, nil)
	ipc.MustRegister(serverProto, vsRequest2ID, func(ctx ipc.Context, m *vsRequest2) {
		peer, ok := srv.peers.get(ctx.Conn())
		if !ok {
			srv.refuse(ctx, m)
			return
		}
		if peer.less(vsVersion{1, 2}) {
			srv.errs.add(fmt.Errorf("vsRequest2 from a %v peer", peer))
			return
		}
		if err := ctx.Respond(&vsResponse2{Error: uint32(len(m.Str))}); err != nil {
			srv.errs.add(err)
		}
	})
	ipc.MustRegister[vsResponse2](serverProto, vsResponse2ID, nil)
	srv.svc = startService(t, ipc.Config{Protocol: serverProto, Listen: "127.0.0.1:0", ConnectionStop: srv.stops.add})
	return srv
}

// vsClientProto is the protocol of a client of version v: the types
// that version has.
func vsClientProto(v vsVersion) *ipc.Protocol {
	proto := ipc.NewProtocol()
	ipc.MustRegister[vsInit](proto, vsInitID, nil)
	ipc.MustRegister[vsRequest](proto, vsRequestID, nil)
	ipc.MustRegister[vsResponse](proto, vsResponseID, nil)
	if !v.less(vsVersion{1, 2}) {
		ipc.MustRegister[vsRequest2](proto, vsRequest2ID, nil)
		ipc.MustRegister[vsResponse2](proto, vsResponse2ID, nil)
	}
	return proto
}

// vsStartClient starts the client of protocol version v for
// TestClientServerVersioning and queues its application request.
func vsStartClient(t *testing.T, addr string, v vsVersion) *vsClient {
	c := &vsClient{version: v, done: make(chan struct{})}
	proto := vsClientProto(v)
	onInit := func(info ipc.ConnInfo) func(req, resp *vsInit, err error) {
		return func(req, resp *vsInit, err error) {
			c.inits.Add(1)
			switch {
			case err != nil:
				c.errs.add(fmt.Errorf("client %v: InitRequest: %w", v, err))
			case resp.Error != 0:
				c.rejected.Add(1)
				if err := c.svc.AbortPool(info.Pool, nil); err != nil {
					c.errs.add(err)
				}
			default:
				c.peers.set(info.Conn, resp.Version)
				if err := info.Conn.Activate(); err != nil {
					c.errs.add(err)
				}
			}
		}
	}
	c.svc = startService(t, ipc.Config{
		Protocol:     proto,
		StartPassive: true,
		ConnectionStart: func(info ipc.ConnInfo) {
			err := ipc.SendRequestTo(c.svc, info.Conn, &vsInit{Version: v}, 0, onInit(info))
			if err != nil {
				c.errs.add(fmt.Errorf("client %v: send InitRequest: %w", v, err))
			}
		},
	})
	finish := func(result any) {
		if c.count.Add(1) == 1 {
			c.result = result
			close(c.done)
		}
	}
	var err error
	switch {
	case v.Minor == 0:
		err = ipc.SendRequest(c.svc, addr, &vsRequest{ver: 1}, 0, func(_ *vsRequest, resp *vsResponse, err error) {
			finish(vsResult(resp, err))
		})
	case v.Minor == 1:
		err = ipc.SendRequest(c.svc, addr, &vsRequest{Value: 11, ver: 2}, 0, func(_ *vsRequest, resp *vsResponse, err error) {
			finish(vsResult(resp, err))
		})
	default:
		err = ipc.SendRequest(c.svc, addr, &vsRequest2{Str: "test"}, 0, func(_ *vsRequest2, resp *vsResponse2, err error) {
			finish(vsResult(resp, err))
		})
	}
	require.NoError(t, err)
	return c
}

// vsResult is a completion's outcome: the error if any, else the response.
func vsResult[R any](resp *R, err error) any {
	if err != nil {
		return err
	}
	return resp
}
