package test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// A port of SolidFrame mprpc's multiprotocol_basic: message groups
// (ipc.GroupID, SolidFrame's (protocol, type) pair type ids) let three
// independent protocols, alpha (0), beta (1) and gamma (2), share one
// server. Each protocol has First (a uint32 value), Second (uint64) and
// Third (uint16), each with a string, type ids (group, 1..3). The server
// knows all three groups; each client service only its own.
//
// Identifiers of this file start with "mp".

// The groups, as type parameters: mpFirst[mpAlpha] and mpFirst[mpBeta]
// are distinct Go types, as one Protocol needs.
type (
	mpAlpha struct{}
	mpBeta  struct{}
	mpGamma struct{}
)

// mpMsg is what the test reads from every message: its string and value.
type mpMsg interface {
	ipc.Message
	val() (string, uint64)
}

// mpFirst is a group's FirstMessage.
type mpFirst[G any] struct {
	Str string
	V   uint32
}

// Serde implements serde.Type: str then v, as SolidFrame's.
func (m *mpFirst[G]) Serde(v *serde.Visitor) { v.String(&m.Str); v.Uint32(&m.V) }
func (m *mpFirst[G]) val() (string, uint64)  { return m.Str, uint64(m.V) }

// mpSecond is a group's SecondMessage.
type mpSecond[G any] struct {
	Str string
	V   uint64
}

// Serde implements serde.Type.
func (m *mpSecond[G]) Serde(v *serde.Visitor) { v.String(&m.Str); v.Uint64(&m.V) }
func (m *mpSecond[G]) val() (string, uint64)  { return m.Str, m.V }

// mpThird is a group's ThirdMessage.
type mpThird[G any] struct {
	Str string
	V   uint16
}

// Serde implements serde.Type.
func (m *mpThird[G]) Serde(v *serde.Visitor) { v.String(&m.Str); v.Uint16(&m.V) }
func (m *mpThird[G]) val() (string, uint64)  { return m.Str, uint64(m.V) }

// mpTypes registers group G's three types as group id, with no handlers
// (a client's protocol).
func mpTypes[G any](p *ipc.Protocol, id uint8) {
	ipc.MustRegister[mpFirst[G]](p, ipc.GroupID(id, 1), nil)
	ipc.MustRegister[mpSecond[G]](p, ipc.GroupID(id, 2), nil)
	ipc.MustRegister[mpThird[G]](p, ipc.GroupID(id, 3), nil)
}

// mpRespond answers a request, recording a failure.
func mpRespond(ctx ipc.Context, resp ipc.Message, errs *plErrs) {
	if err := ctx.Respond(resp); err != nil {
		errs.add(err)
	}
}

// mpEcho registers group G with handlers that echo every message (alpha
// and gamma on the server).
func mpEcho[G any](p *ipc.Protocol, id uint8, errs *plErrs) {
	ipc.MustRegister(p, ipc.GroupID(id, 1), func(ctx ipc.Context, m *mpFirst[G]) { mpRespond(ctx, m, errs) })
	ipc.MustRegister(p, ipc.GroupID(id, 2), func(ctx ipc.Context, m *mpSecond[G]) { mpRespond(ctx, m, errs) })
	ipc.MustRegister(p, ipc.GroupID(id, 3), func(ctx ipc.Context, m *mpThird[G]) { mpRespond(ctx, m, errs) })
}

// mpBetaServer registers beta with SolidFrame's mapping: First is answered
// by a Second, Second by a Second, Third by a First, each with the same
// string and value.
func mpBetaServer(p *ipc.Protocol, errs *plErrs) {
	ipc.MustRegister(p, ipc.GroupID(1, 1), func(ctx ipc.Context, m *mpFirst[mpBeta]) {
		mpRespond(ctx, &mpSecond[mpBeta]{Str: m.Str, V: uint64(m.V)}, errs)
	})
	ipc.MustRegister(p, ipc.GroupID(1, 2), func(ctx ipc.Context, m *mpSecond[mpBeta]) { mpRespond(ctx, m, errs) })
	ipc.MustRegister(p, ipc.GroupID(1, 3), func(ctx ipc.Context, m *mpThird[mpBeta]) {
		mpRespond(ctx, &mpFirst[mpBeta]{Str: m.Str, V: uint32(m.V)}, errs)
	})
}

// mpRun counts the completions of the test's requests by name.
type mpRun struct {
	mu     sync.Mutex
	counts map[string]int
	left   int
	done   chan struct{}
	errs   plErrs
}

// mpSend sends req as a request to addr and checks that the response is a
// Resp with req's string and value.
func mpSend[Req, Resp any, PReq interface {
	*Req
	mpMsg
}, PResp interface {
	*Resp
	mpMsg
}](t *testing.T, r *mpRun, svc *ipc.Service, addr, name string, req PReq) {
	t.Helper()
	r.mu.Lock()
	r.left++
	r.mu.Unlock()
	require.NoError(t, ipc.SendRequest(svc, addr, req, 0, func(req PReq, resp PResp, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.counts[name]++
		switch {
		case err != nil:
			r.errs.add(fmt.Errorf("%s: %w", name, err))
		case resp == nil:
			r.errs.add(fmt.Errorf("%s: no response", name))
		default:
			ws, wv := req.val()
			gs, gv := resp.val()
			if gs != ws || gv != wv {
				r.errs.add(fmt.Errorf("%s: answered with value %d and a %d-byte string, want %d and the request's %d bytes",
					name, gv, len(gs), wv, len(ws)))
			}
		}
		if r.left--; r.left == 0 {
			close(r.done)
		}
	}))
}

// mpString is a request's string of n bytes.
func mpString(idx, n int) string { return string(testmsg.Payload(idx, n)) }

// TestMultiProtocolBasic ports multiprotocol_basic: the server registers
// alpha, beta and gamma; three client services each register only their
// own group and send First (100000), Second (200000) and Third (30000,
// the value is also the string's length). Alpha and gamma are echoed;
// beta answers First with Second, Second with Second and Third with First.
// Each of the 9 requests completes exactly once with the expected type,
// value and string, checked once the clients have stopped.
func TestMultiProtocolBasic(t *testing.T) {
	var serverErrs plErrs
	serverProto := ipc.NewProtocol()
	mpEcho[mpAlpha](serverProto, 0, &serverErrs)
	mpBetaServer(serverProto, &serverErrs)
	mpEcho[mpGamma](serverProto, 2, &serverErrs)
	server := startService(t, ipc.Config{Protocol: serverProto, Listen: "127.0.0.1:0", TypeIDSize: 2})
	addr := server.Addr().String()

	newClient := func(register func(*ipc.Protocol)) *ipc.Service {
		p := ipc.NewProtocol()
		register(p)
		return startService(t, ipc.Config{Protocol: p, TypeIDSize: 2})
	}
	alpha := newClient(func(p *ipc.Protocol) { mpTypes[mpAlpha](p, 0) })
	beta := newClient(func(p *ipc.Protocol) { mpTypes[mpBeta](p, 1) })
	gamma := newClient(func(p *ipc.Protocol) { mpTypes[mpGamma](p, 2) })

	r := &mpRun{counts: map[string]int{}, done: make(chan struct{})}
	r.mu.Lock() // no completion may close done before all are sent
	r.left = 1
	r.mu.Unlock()

	mpSend[mpFirst[mpAlpha], mpFirst[mpAlpha]](t, r, alpha, addr, "alpha First", &mpFirst[mpAlpha]{Str: mpString(0, 100000), V: 100000})
	mpSend[mpSecond[mpAlpha], mpSecond[mpAlpha]](t, r, alpha, addr, "alpha Second", &mpSecond[mpAlpha]{Str: mpString(1, 200000), V: 200000})
	mpSend[mpThird[mpAlpha], mpThird[mpAlpha]](t, r, alpha, addr, "alpha Third", &mpThird[mpAlpha]{Str: mpString(2, 30000), V: 30000})

	mpSend[mpFirst[mpBeta], mpSecond[mpBeta]](t, r, beta, addr, "beta First", &mpFirst[mpBeta]{Str: mpString(3, 100000), V: 100000})
	mpSend[mpSecond[mpBeta], mpSecond[mpBeta]](t, r, beta, addr, "beta Second", &mpSecond[mpBeta]{Str: mpString(4, 200000), V: 200000})
	mpSend[mpThird[mpBeta], mpFirst[mpBeta]](t, r, beta, addr, "beta Third", &mpThird[mpBeta]{Str: mpString(5, 30000), V: 30000})

	mpSend[mpFirst[mpGamma], mpFirst[mpGamma]](t, r, gamma, addr, "gamma First", &mpFirst[mpGamma]{Str: mpString(6, 100000), V: 100000})
	mpSend[mpSecond[mpGamma], mpSecond[mpGamma]](t, r, gamma, addr, "gamma Second", &mpSecond[mpGamma]{Str: mpString(7, 200000), V: 200000})
	mpSend[mpThird[mpGamma], mpThird[mpGamma]](t, r, gamma, addr, "gamma Third", &mpThird[mpGamma]{Str: mpString(8, 30000), V: 30000})

	r.mu.Lock()
	if r.left--; r.left == 0 {
		close(r.done)
	}
	r.mu.Unlock()
	wait(t, r.done, "9 answers")
	for _, c := range []*ipc.Service{alpha, beta, gamma} {
		semStop(t, c) // quiet: nothing more can complete
	}
	r.errs.check(t)
	serverErrs.check(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Len(t, r.counts, 9)
	for name, n := range r.counts {
		require.Equal(t, 1, n, "%s completions", name)
	}
}

// mpBetaThirdPacket is a Data packet a raw peer writes: a one-way beta
// Third{Str: "", V: 5} whose body starts with the type id bytes 01 03,
// group then type (the header is kaNotePacket's, slot 100).
var mpBetaThirdPacket = []byte{
	0x01, 0x00, 0x18, 0x00, // Data, 24 bytes
	0x02, 0x09, 0x64, 0x09, 0x00, // NewMessage, slot 100, 9 bytes
	0x02, 0x10, 0x04, 0x00, 0x01, 0x65, 0x00, 0x00, 0x00,
	0x05, 0x09, 0x64, 0x05, 0x00, // EndMessage, slot 100, 5 bytes
	0x01, 0x03, // group 1 (beta), type 3 (Third)
	0x00,       // Str: size 0
	0x01, 0x05, // V: 5
}

// TestMultiProtocolWireOrder pins the group encoding on the wire: a peer
// that writes the type id bytes 01 03 reaches beta's Third (group 1,
// type 3); read the other way round they would name group 3, which the
// server does not know, and the connection would close.
func TestMultiProtocolWireOrder(t *testing.T) {
	got := make(chan uint16, 1)
	p := ipc.NewProtocol()
	ipc.MustRegister(p, ipc.GroupID(1, 3), func(_ ipc.Context, m *mpThird[mpBeta]) { got <- m.V })
	stopped := make(chan error, 1)
	server := startService(t, ipc.Config{
		Protocol: p, Listen: "127.0.0.1:0", TypeIDSize: 2,
		ConnectionStop: func(_ ipc.ConnInfo, err error) { stopped <- err },
	})
	peer := kaDialRaw(t, server.Addr().String())
	peer.write(mpBetaThirdPacket)
	select {
	case v := <-got:
		require.Equal(t, uint16(5), v)
	case err := <-stopped:
		t.Fatalf("the server closed the connection: %v", err)
	case <-time.After(deadline):
		t.Fatal("beta Third never arrived")
	}
	require.Empty(t, stopped)
	g, typ := ipc.SplitGroupID(ipc.GroupID(1, 3))
	require.Equal(t, [2]uint8{1, 3}, [2]uint8{g, typ})
}
