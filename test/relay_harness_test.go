package test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// Relay test harness: a relay node that knows only registerMsg (never the
// payload types), and peers that register a name on it.

// Type ids shared by every relay test protocol.
const (
	relayMsgID      = 1 // testmsg.Message: the payload, unknown to the relay
	relayRegisterID = 2 // registerMsg
)

// registerMsg asks the relay to register the sender's connection as Name;
// the relay answers with the same message.
type registerMsg struct{ Name string }

func (m *registerMsg) Serde(v *serde.Visitor) { v.String(&m.Name) }

// relaySizes are the payload sizes of the relay tests, 100 B to 16 MB
// (SolidFrame's relay tests use 20 such sizes).
var relaySizes = []int{100, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000,
	512000, 1024000, 2048000, 4096000, 8192000, 16384000, 200, 400, 800, 10000}

// startRelay starts a relay node: relaying enabled, registerMsg its only
// message type. cfg.Protocol and cfg.Listen are set here.
func startRelay(t testing.TB, cfg ipc.Config) *ipc.Service {
	t.Helper()
	p := ipc.NewProtocol()
	require.NoError(t, ipc.Register(p, relayRegisterID, func(ctx ipc.Context, m *registerMsg) {
		if err := ctx.Conn().RegisterRelayName(m.Name); err != nil {
			panic(err) // reached only by a broken test
		}
		_ = ctx.Respond(&registerMsg{Name: m.Name})
	}))
	cfg.Protocol = p
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Relay.Enabled = true
	return startService(t, cfg)
}

// relayProto returns a peer protocol: testmsg.Message with handler h (nil:
// none) and registerMsg.
func relayProto(t testing.TB, h func(ipc.Context, *testmsg.Message)) *ipc.Protocol {
	t.Helper()
	p := ipc.NewProtocol()
	require.NoError(t, ipc.Register(p, relayMsgID, h))
	require.NoError(t, ipc.Register[registerMsg](p, relayRegisterID, nil))
	return p
}

// join registers the connection of svc's pool to relay as name, and waits
// for the relay's answer.
func join(t testing.TB, svc *ipc.Service, relay, name string) {
	t.Helper()
	done := make(chan struct{})
	var err error
	require.NoError(t, ipc.SendRequest(svc, relay, &registerMsg{Name: name}, 0,
		func(_ *registerMsg, _ *registerMsg, e error) { err = e; close(done) }))
	wait(t, done, "registration of "+name)
	require.NoError(t, err)
}

// echoPeer is a destination that echoes every testmsg.Message and counts
// what it saw: receipts and response completions per index, by the
// flags they arrived with.
type echoPeer struct {
	mu       sync.Mutex
	received map[uint32]int // receipts per index
	answered map[uint32]int // response completions per index
	errs     []error
	// hook, if set, runs on each receipt before the answer; false: do not
	// answer.
	hook func(ctx ipc.Context, m *testmsg.Message) bool
}

func newEchoPeer() *echoPeer {
	return &echoPeer{received: map[uint32]int{}, answered: map[uint32]int{}}
}

func (e *echoPeer) handle(ctx ipc.Context, m *testmsg.Message) {
	e.mu.Lock()
	e.received[m.Idx]++
	if f := ctx.Flags(); f&ipc.OnPeer == 0 || f&ipc.Relayed == 0 {
		e.errs = append(e.errs, fmt.Errorf("message %d arrived with flags %v", m.Idx, f))
	}
	hook := e.hook
	e.mu.Unlock()
	if hook != nil && !hook(ctx, m) {
		return
	}
	if !ctx.IsRequest() {
		return
	}
	idx := m.Idx
	if err := ctx.RespondFlags(m, 0, func(err error) {
		e.mu.Lock()
		e.answered[idx]++
		e.mu.Unlock()
	}); err != nil {
		e.mu.Lock()
		e.errs = append(e.errs, err)
		e.mu.Unlock()
	}
}

// once checks, once the peer has stopped, that requests 0..total-1 each
// arrived once, OnPeer and Relayed, and that each answer completed once.
func (e *echoPeer) once(t testing.TB, total int) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.Empty(t, e.errs)
	for i := range total {
		require.Equal(t, 1, e.received[uint32(i)], "receipts of %d", i)
		require.Equal(t, 1, e.answered[uint32(i)], "answers of %d", i)
	}
}

// relayEcho runs A → relay → B: a relay node (relayCfg), B (peerCfg)
// registered on it as "b" and echoing, and A (peerCfg) sending total
// requests (relaySizes by index, initial at once, one more per response)
// to the relay path name. Every request completes once with its intact
// echo, B saw and answered each once, and the relay completed every
// relayed message (total each way) and the registration answer.
func relayEcho(t *testing.T, relayCfg, peerCfg ipc.Config, name string, total, initial int) {
	t.Helper()
	relay := startRelay(t, relayCfg)
	raddr := relay.Addr().String()
	peer := newEchoPeer()
	bCfg, aCfg := peerCfg, peerCfg
	bCfg.Protocol, aCfg.Protocol = relayProto(t, peer.handle), relayProto(t, nil)
	b := startService(t, bCfg)
	join(t, b, raddr, "b")
	a := startService(t, aCfg)

	run := chainRequests(t, a, raddr+"/"+name, relaySizes, total, initial, echoed)
	stopAll(t, a, b, relay)
	run.once(t)
	peer.once(t, total)
	st := relay.Stats()
	require.Equal(t, uint64(2*total+1), st.Completions.OK, "relayed messages completed, and the registration answer")
	require.Zero(t, st.InFlight)
}
