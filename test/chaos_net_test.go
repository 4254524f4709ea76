package test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// The chaos suite's network: toxiproxy proxies, used in-process, between the
// client and a server that the suite kills and restarts on one fixed
// address. Each proxy carries one fixed set of toxics; the client's
// resolver sends each new connection through the proxy the chaos schedule
// picked last, so faults change without touching the toxics of live links.

// chaosFault is one proxy's toxics: toxiproxy JSON toxic definitions.
type chaosFault struct {
	name   string
	toxics []string
}

// chaosFaults lists the proxies. "clean" forwards bytes untouched; the
// others cut connections in the middle of packets (limit_data, reset_peer),
// delay them (latency), throttle them (bandwidth), black-hole them
// (timeout) or split them into tiny segments (slicer).
var chaosFaults = []chaosFault{
	{name: "clean"},
	{name: "latency", toxics: []string{
		`{"type":"latency","stream":"upstream","attributes":{"latency":3,"jitter":3}}`,
		`{"type":"latency","stream":"downstream","attributes":{"latency":3,"jitter":3}}`,
	}},
	{name: "bandwidth", toxics: []string{
		`{"type":"bandwidth","stream":"upstream","attributes":{"rate":256}}`,
		`{"type":"bandwidth","stream":"downstream","attributes":{"rate":256}}`,
	}},
	{name: "slicer", toxics: []string{
		`{"type":"slicer","stream":"upstream","attributes":{"average_size":48,"size_variation":40,"delay":20}}`,
		`{"type":"slicer","stream":"downstream","attributes":{"average_size":48,"size_variation":40,"delay":20}}`,
	}},
	{name: "cut-upstream", toxics: []string{
		`{"type":"limit_data","stream":"upstream","attributes":{"bytes":9001}}`,
	}},
	{name: "cut-downstream", toxics: []string{
		`{"type":"limit_data","stream":"downstream","attributes":{"bytes":7013}}`,
	}},
	{name: "reset", toxics: []string{
		`{"type":"reset_peer","stream":"upstream","attributes":{"timeout":15}}`,
	}},
	{name: "blackhole-up", toxics: []string{
		// Drops what the client sends, closes after 400 ms.
		`{"type":"timeout","stream":"upstream","attributes":{"timeout":400}}`,
	}},
	{name: "blackhole-down", toxics: []string{
		// Drops what the server sends and never closes: the client's
		// dead-peer timeout ends the connection.
		`{"type":"timeout","stream":"downstream","attributes":{"timeout":0}}`,
	}},
}

// chaosNet is the set of proxies in front of the server address.
type chaosNet struct {
	server  *toxiproxy.ApiServer
	proxies []*toxiproxy.Proxy
	current atomic.Int32 // index in proxies of the proxy new connections use
	uses    []atomic.Int64
}

// newChaosNet starts one proxy per fault on 127.0.0.1:0, all forwarding to
// upstream, and stops them when the test ends.
func newChaosNet(t testing.TB, upstream string) *chaosNet {
	t.Helper()
	// Toxics log through zerolog's global logger (to stderr): silence it.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	n := &chaosNet{
		server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		uses:   make([]atomic.Int64, len(chaosFaults)),
	}
	for _, f := range chaosFaults {
		p := toxiproxy.NewProxy(n.server, f.name, "127.0.0.1:0", upstream)
		require.NoError(t, p.Start(), "proxy %s", f.name)
		for _, tx := range f.toxics {
			_, err := p.Toxics.AddToxicJson(strings.NewReader(tx))
			require.NoError(t, err, "proxy %s: toxic %s", f.name, tx)
		}
		n.proxies = append(n.proxies, p)
	}
	t.Cleanup(n.stop)
	return n
}

// resolve implements ipc.Resolver: the current proxy's address, whatever
// the name.
func (n *chaosNet) resolve(_ context.Context, _ string) ([]string, error) {
	i := n.current.Load()
	n.uses[i].Add(1)
	return []string{n.proxies[i].Listen}, nil
}

// use makes new connections go through proxy i.
func (n *chaosNet) use(i int) { n.current.Store(int32(i)) }

// cutAll closes every proxied connection at once (both sides, mid-packet
// if bytes were in flight) and listens again on the same addresses.
func (n *chaosNet) cutAll() error {
	for _, p := range n.proxies {
		p.Stop()
		if err := chaosRetry(func() error { return p.Start() }); err != nil {
			return fmt.Errorf("proxy %s: %w", p.Name, err)
		}
	}
	return nil
}

func (n *chaosNet) stop() {
	for _, p := range n.proxies {
		p.Stop()
	}
}

// usage describes how many connection attempts each proxy received.
func (n *chaosNet) usage() string {
	var b strings.Builder
	for i, f := range chaosFaults {
		fmt.Fprintf(&b, " %s=%d", f.name, n.uses[i].Load())
	}
	return b.String()
}

// chaosRetry retries a listen on a fixed address that may still be held
// for a moment by the listener just closed (load generation, not an
// assertion: the pause only spaces the attempts).
func chaosRetry(f func() error) error {
	var err error
	for range 250 {
		if err = f(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// chaosServer is the server the suite kills and restarts on one address.
type chaosServer struct {
	addr string
	cfg  func(gen int) ipc.Config // the config of incarnation gen

	mu  sync.Mutex // guards cur and gen
	cur *ipc.Service
	gen int

	starts, stops atomic.Int64 // connections accepted and closed, all incarnations
}

// newChaosServer picks an ephemeral port once and starts the first
// incarnation on it.
func newChaosServer(t testing.TB, cfg func(gen int) ipc.Config) *chaosServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &chaosServer{addr: ln.Addr().String(), cfg: cfg}
	require.NoError(t, ln.Close())
	require.NoError(t, s.start())
	return s
}

func (s *chaosServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		return nil
	}
	s.gen++
	cfg := s.cfg(s.gen)
	cfg.Listen = s.addr
	cfg.ConnectionStart = func(ipc.ConnInfo) { s.starts.Add(1) }
	cfg.ConnectionStop = func(ipc.ConnInfo, error) { s.stops.Add(1) }
	return chaosRetry(func() error {
		svc, err := ipc.NewService(cfg)
		if err != nil {
			return err
		}
		if err := svc.Start(); err != nil {
			_ = svc.Stop(context.Background())
			return err
		}
		s.cur = svc
		return nil
	})
}

// kill stops the current incarnation: graceful gives it a few
// milliseconds to send the responses it owes, otherwise it stops at once.
func (s *chaosServer) kill(graceful bool) error {
	s.mu.Lock()
	svc := s.cur
	s.cur = nil
	s.mu.Unlock()
	if svc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if !graceful {
		cancel()
	}
	defer cancel()
	err := svc.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil // responses it still owed fail; that is the point
	}
	return err
}

// restart kills the server and starts the next incarnation.
func (s *chaosServer) restart(graceful bool) error {
	if err := s.kill(graceful); err != nil {
		return fmt.Errorf("server stop: %w", err)
	}
	return s.start()
}
