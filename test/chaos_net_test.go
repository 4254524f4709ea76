package test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// The chaos suite's network: one proxy per fault between the client and a
// server that the suite kills and restarts on one fixed address. The
// faults are toxiproxy's toxics (github.com/Shopify/toxiproxy/v2/toxics),
// run in-process on links driven here: toxiproxy's own Proxy leaks the
// goroutines of a link whose destination fails (a toxic blocks forever
// sending to a link writer that has returned), which would hide the
// engine's leaks. Here a link's writer drains its toxic until the toxic
// ends, and any end closes both sockets, so every goroutine of a link
// exits once its sockets are closed.
//
// The client's resolver sends each new connection through the proxy the
// chaos schedule picked last.

// chaosFault is one proxy's toxics, one per direction at most.
type chaosFault struct {
	name     string
	up, down func() toxics.Toxic // client to server, server to client; nil: none
	linger0  bool                // close with a reset (reset_peer)
}

// chaosFaults lists the proxies. "clean" forwards bytes untouched; the
// others cut connections in the middle of packets (limit_data, reset_peer),
// delay them (latency), throttle them (bandwidth), black-hole them
// (timeout) or split them into tiny segments (slicer).
var chaosFaults = []chaosFault{
	{name: "clean"},
	{name: "latency",
		up:   func() toxics.Toxic { return &toxics.LatencyToxic{Latency: 3, Jitter: 3} },
		down: func() toxics.Toxic { return &toxics.LatencyToxic{Latency: 3, Jitter: 3} }},
	{name: "bandwidth",
		up:   func() toxics.Toxic { return &toxics.BandwidthToxic{Rate: 256} },
		down: func() toxics.Toxic { return &toxics.BandwidthToxic{Rate: 256} }},
	{name: "slicer",
		up:   func() toxics.Toxic { return &toxics.SlicerToxic{AverageSize: 48, SizeVariation: 40, Delay: 20} },
		down: func() toxics.Toxic { return &toxics.SlicerToxic{AverageSize: 48, SizeVariation: 40, Delay: 20} }},
	{name: "cut-upstream",
		up: func() toxics.Toxic { return &toxics.LimitDataToxic{Bytes: 9001} }},
	{name: "cut-downstream",
		down: func() toxics.Toxic { return &toxics.LimitDataToxic{Bytes: 7013} }},
	{name: "reset", linger0: true,
		up: func() toxics.Toxic { return &toxics.ResetToxic{Timeout: 15} }},
	// Drops what the client sends, closes after 400 ms.
	{name: "blackhole-up",
		up: func() toxics.Toxic { return &toxics.TimeoutToxic{Timeout: 400} }},
	// Drops what the server sends and never closes: the client's dead-peer
	// timeout ends the connection.
	{name: "blackhole-down",
		down: func() toxics.Toxic { return &toxics.TimeoutToxic{Timeout: 0} }},
}

// chaosNet is the set of proxies in front of the server address.
type chaosNet struct {
	upstream string
	proxies  []*chaosProxy
	current  atomic.Int32 // index in proxies of the proxy new connections use
}

// chaosProxy listens on 127.0.0.1:0 and links every accepted connection to
// the upstream address through its fault's toxics.
type chaosProxy struct {
	fault    chaosFault
	addr     string
	upstream string
	ln       net.Listener
	accepted chan struct{}  // closed when the accept loop returns
	wg       sync.WaitGroup // every link goroutine
	uses     atomic.Int64   // connection attempts the resolver sent here

	mu    sync.Mutex
	links map[*chaosLink]struct{}
}

// chaosLink is one proxied connection: two sockets, two directions.
type chaosLink struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{} // closed by cut
	p              *chaosProxy
}

// newChaosNet starts one proxy per fault, all forwarding to upstream, and
// stops them when the test ends.
func newChaosNet(t testing.TB, upstream string) *chaosNet {
	t.Helper()
	// Some toxics log through zerolog's global logger (to stderr).
	zerolog.SetGlobalLevel(zerolog.Disabled)
	n := &chaosNet{upstream: upstream}
	for _, f := range chaosFaults {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		p := &chaosProxy{fault: f, addr: ln.Addr().String(), upstream: upstream, ln: ln,
			accepted: make(chan struct{}), links: map[*chaosLink]struct{}{}}
		go p.accept()
		n.proxies = append(n.proxies, p)
	}
	t.Cleanup(n.stop)
	return n
}

// resolve implements ipc.Resolver: the current proxy's address, whatever
// the name.
func (n *chaosNet) resolve(_ context.Context, _ string) ([]string, error) {
	p := n.proxies[n.current.Load()]
	p.uses.Add(1)
	return []string{p.addr}, nil
}

// use makes new connections go through proxy i.
func (n *chaosNet) use(i int) { n.current.Store(int32(i)) }

// cutAll closes every proxied connection at once, both sides, mid-packet
// if bytes were in flight.
func (n *chaosNet) cutAll() {
	for _, p := range n.proxies {
		p.mu.Lock()
		links := make([]*chaosLink, 0, len(p.links))
		for l := range p.links {
			links = append(links, l)
		}
		p.mu.Unlock()
		for _, l := range links {
			l.cut()
		}
	}
}

// stop closes the listeners and every link, and waits for all their
// goroutines.
func (n *chaosNet) stop() {
	for _, p := range n.proxies {
		_ = p.ln.Close()
	}
	for _, p := range n.proxies {
		<-p.accepted // no new link
	}
	n.cutAll()
	for _, p := range n.proxies {
		p.wg.Wait()
	}
}

// usage describes how many connection attempts each proxy received.
func (n *chaosNet) usage() string {
	var b strings.Builder
	for _, p := range n.proxies {
		fmt.Fprintf(&b, " %s=%d", p.fault.name, p.uses.Load())
	}
	return b.String()
}

func (p *chaosProxy) accept() {
	defer close(p.accepted)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed by stop
		}
		s, err := net.DialTimeout("tcp", p.upstream, time.Second)
		if err != nil { // the server is down: accept, then close
			_ = c.Close()
			continue
		}
		if p.fault.linger0 {
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = s.(*net.TCPConn).SetLinger(0)
		}
		l := &chaosLink{client: c, server: s, done: make(chan struct{}), p: p}
		p.mu.Lock()
		p.links[l] = struct{}{}
		p.mu.Unlock()
		l.direction(c, s, p.fault.up)
		l.direction(s, c, p.fault.down)
	}
}

// cut closes both sockets once; every goroutine of the link then ends.
func (l *chaosLink) cut() {
	l.once.Do(func() {
		close(l.done)
		_ = l.client.Close()
		_ = l.server.Close()
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
	})
}

// direction copies src to dst through the toxic mk makes (none if nil):
// a reader, the toxic and a writer, each its own goroutine. The reader
// closes the toxic's input when src ends or the link is cut; the writer
// drains the toxic's output until the toxic closes it, discarding what dst
// refuses, then cuts the link.
func (l *chaosLink) direction(src, dst net.Conn, mk func() toxics.Toxic) {
	var tx toxics.Toxic
	size := 0
	if mk != nil {
		tx = mk()
		if b, ok := tx.(toxics.BufferedToxic); ok {
			size = b.GetBufferSize()
		}
	}
	in := make(chan *stream.StreamChunk, size)
	out := in
	if tx != nil {
		out = make(chan *stream.StreamChunk)
		stub := toxics.NewToxicStub(in, out)
		if st, ok := tx.(toxics.StatefulToxic); ok {
			stub.State = st.NewState()
		}
		l.p.wg.Add(1)
		go func() {
			defer l.p.wg.Done()
			stub.Run(&toxics.ToxicWrapper{Toxic: tx, Toxicity: 1})
		}()
	}
	l.p.wg.Add(2)
	go func() { // reader
		defer l.p.wg.Done()
		defer close(in)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case in <- &stream.StreamChunk{Data: slices.Clone(buf[:n]), Timestamp: time.Now()}:
				case <-l.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // writer
		defer l.p.wg.Done()
		defer l.cut()
		failed := false
		for c := range out {
			if !failed {
				if _, err := dst.Write(c.Data); err != nil {
					failed = true
					l.cut()
				}
			}
		}
	}()
}

// chaosServer is the server the suite kills and restarts on one address.
type chaosServer struct {
	addr string
	cfg  func(gen int) ipc.Config // the config of incarnation gen

	mu  sync.Mutex // guards cur and gen
	cur *ipc.Service
	gen int

	starts, stops atomic.Int64 // connections accepted and closed, all incarnations

	lmu       sync.Mutex
	leftovers []string // what a stopped incarnation's Stats still showed
}

// newChaosServer picks a free port once and starts the first incarnation
// on it.
func newChaosServer(t testing.TB, cfg func(gen int) ipc.Config) *chaosServer {
	t.Helper()
	s := &chaosServer{addr: fixedPortAddr(t), cfg: cfg}
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
	// Whatever its context, a stopped service has completed every send and
	// closed every connection.
	if st := svc.Stats(); st.InFlight != 0 || len(st.Conns) != 0 || st.Connections.Open() != 0 {
		s.lmu.Lock()
		s.leftovers = append(s.leftovers, fmt.Sprintf("stopped server: %d in flight, %d connections listed, %d open (%+v)",
			st.InFlight, len(st.Conns), st.Connections.Open(), st.Connections))
		s.lmu.Unlock()
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
