package ipc_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/buffers"
	"github.com/ipcframe/ipcframe/internal/hol"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
)

// benchMsg is the 1 KiB echo payload of the benchmarks. It embeds
// ipc.Recyclable so that received messages are reused.
type benchMsg struct {
	ipc.Recyclable
	Data []byte
}

func (m *benchMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

func (m *benchMsg) payload() []byte { return m.Data }

// BenchmarkEcho measures request/response round trips of a 1 KiB payload
// over one loopback connection with conc requests outstanding (each
// completion issues the next request). allocs/op covers client and server.
func BenchmarkEcho(b *testing.B) {
	for _, conc := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) { benchEcho(b, conc, 1024) })
	}
}

func benchEcho(b *testing.B, conc, size int, tweaks ...benchTweak) {
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *benchMsg) { _ = ctx.Respond(m) })
	cp := ipc.NewProtocol()
	ipc.MustRegister[benchMsg](cp, 1, nil)
	server, client := startBenchPair(b,
		ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", MaxQueuedMessages: 4096, MaxReaderSlots: 64 + 1024},
		ipc.Config{Protocol: cp, MaxQueuedMessages: 4096, MaxResponseWait: 1024}, tweaks)
	addr := server.Addr().String()

	var (
		mu        sync.Mutex
		remaining = b.N
		wg        sync.WaitGroup
	)
	var cb func(req, resp *benchMsg, err error)
	next := func(m *benchMsg) bool {
		mu.Lock()
		if remaining == 0 {
			mu.Unlock()
			return false
		}
		remaining--
		mu.Unlock()
		if err := ipc.SendRequest(client, addr, m, 0, cb); err != nil {
			b.Error(err)
			return false
		}
		return true
	}
	cb = func(req, resp *benchMsg, err error) {
		if err != nil {
			b.Error(err)
		}
		if !next(req) {
			wg.Done()
		}
	}
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		if !next(&benchMsg{Data: make([]byte, size)}) {
			wg.Done()
		}
	}
	wg.Wait()
}

// BenchmarkOneWay64MiB measures one-way 64 MiB messages on one loopback
// connection, one message outstanding (the next is sent when the previous
// one has been written); SetBytes makes MB/s the payload rate.
func BenchmarkOneWay64MiB(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("buffer=%d", size), func(b *testing.B) { benchOneWay(b, 64<<20, size) })
	}
}

func benchOneWay(b *testing.B, msgSize, bufSize int, tweaks ...benchTweak) {
	benchOneWayData(b, make([]byte, msgSize), bufSize, tweaks...)
}

// plainMsg is a 64 MiB payload as users write it: a plain []byte field, no
// ipc.Recyclable, so every message decodes into a new slice.
type plainMsg struct{ Data []byte }

func (m *plainMsg) Serde(v *serde.Visitor) { v.Bytes(&m.Data) }

func (m *plainMsg) payload() []byte { return m.Data }

// BenchmarkOneWay64MiBPlain is BenchmarkOneWay64MiB as users write it: a
// plain []byte field (plainMsg) and a zero Config apart from size limits
// (BufferSize 4 KiB). Compare with BenchmarkStdTCPOneWay64MiB in the same
// run (issue 8's target: at least 0.85x).
func BenchmarkOneWay64MiBPlain(b *testing.B) {
	benchOneWayMsg(b, &plainMsg{Data: make([]byte, 64<<20)}, 0)
}

// BenchmarkOneWay64MiBPlainTwo is BenchmarkOneWay64MiBPlain with two
// messages under way at once, the next sent when one has been received, as
// cmd/bench -mode bulk sends them: the writer interleaves the two values'
// packets, so the receiver decodes two 64 MiB values at a time.
func BenchmarkOneWay64MiBPlainTwo(b *testing.B) {
	payload := make([]byte, 64<<20)
	benchOneWayWindow(b, []*plainMsg{{Data: payload}, {Data: payload}}, 0)
}

// benchOneWayData sends payload one way per op (bufSize 0: the default
// BufferSize) in a recycled benchMsg and also reports the process's CPU
// time per GB of payload.
func benchOneWayData(b *testing.B, payload []byte, bufSize int, tweaks ...benchTweak) {
	benchOneWayMsg(b, &benchMsg{Data: payload}, bufSize, tweaks...)
}

// benchOneWayMsg sends m one way per op (bufSize 0: the default
// BufferSize) and also reports the process's CPU time per GB of payload,
// the minor page faults per message of the timed region (faults/op) and
// the warm-up messages sent before it (warm-msgs, warmHeap).
func benchOneWayMsg[T any, P interface {
	*T
	ipc.Message
	payload() []byte
}](b *testing.B, m P, bufSize int, tweaks ...benchTweak) {
	msgSize := len(m.payload())
	received := make(chan struct{}, 1024)
	server, client, addr := startOneWayPair(b, func(ctx ipc.Context, m P) { received <- struct{}{} }, bufSize, tweaks)
	sent := make(chan error, 1)
	send := func() {
		if err := client.Send(addr, m, 0, func(err error) { sent <- err }); err != nil {
			b.Fatal(err)
		}
		if err := <-sent; err != nil {
			b.Fatal(err)
		}
	}
	// Messages outside the timer until the heap is warm (warmHeap): the
	// connection, its hello, the first arrays of a Recyclable message and
	// the heap's growth to its steady-state size are set-up.
	warm := warmHeap(b, msgSize, func() { send(); <-received })
	meter := startOneWayMeter(b, server, msgSize, warm)
	for i := 0; i < b.N; i++ {
		send()
	}
	for i := 0; i < b.N; i++ {
		<-received
	}
	meter.report(b)
}

// startOneWayPair starts a server whose protocol hands each message of
// type P to handle and a client that sends them (Limits.MaxString 1 GiB,
// bufSize 0: the default BufferSize), and returns the server's address.
func startOneWayPair[T any, P interface {
	*T
	ipc.Message
}](b *testing.B, handle func(ipc.Context, P), bufSize int, tweaks []benchTweak) (server, client *ipc.Service, addr string) {
	lim := serde.Limits{MaxString: 1 << 30}
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, handle)
	cp := ipc.NewProtocol()
	ipc.MustRegister[T, P](cp, 1, nil)
	server, client = startBenchPair(b,
		ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", Limits: lim, BufferSize: bufSize},
		ipc.Config{Protocol: cp, Limits: lim, BufferSize: bufSize}, tweaks)
	return server, client, server.Addr().String()
}

// oneWayMeter measures the timed region of a one-way benchmark: the
// process's CPU time per GB of payload (cpu-ms/GB), the minor page faults
// per message (faults/op), what the heap did (gcs/op, grow-MB/op,
// released-MB: heapMeter), the warm-up messages sent before it
// (warm-msgs, warmHeap) and the share read straight into values
// (direct-%).
type oneWayMeter struct {
	msgSize, warm int
	cpu0          time.Duration
	faults        faultMeter
	heap          heapMeter
	direct        directMeter
	prefault      prefaultMeter
}

// startOneWayMeter sets the benchmark's bytes per op, starts the meters
// and resets the timer.
func startOneWayMeter(b *testing.B, server *ipc.Service, msgSize, warm int) oneWayMeter {
	b.SetBytes(int64(msgSize))
	b.ReportAllocs()
	m := oneWayMeter{msgSize: msgSize, warm: warm, cpu0: cpuTime(), faults: startFaultMeter(), heap: startHeapMeter(), direct: startDirectMeter(server), prefault: startPrefaultMeter()}
	b.ResetTimer()
	return m
}

// report stops the timer and reports the meters.
func (m oneWayMeter) report(b *testing.B) {
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-m.cpu0).Milliseconds())/(float64(b.N)*float64(m.msgSize)/1e9), "cpu-ms/GB")
	m.faults.report(b)
	m.heap.report(b)
	b.ReportMetric(float64(m.warm), "warm-msgs")
	m.direct.report(b, m.msgSize)
	m.prefault.report(b)
}

// prefaultMeter reports the pages the receiver's lent arrays had populated
// ahead of the reads per op (prefault-pages/op, buffers.PrefaultStats):
// faults/op counts them too, but they were not taken by a loop.
type prefaultMeter struct{ pages uint64 }

func startPrefaultMeter() prefaultMeter {
	return prefaultMeter{buffers.PrefaultStats().Pages}
}

func (m prefaultMeter) report(b *testing.B) {
	b.ReportMetric(float64(buffers.PrefaultStats().Pages-m.pages)/float64(b.N), "prefault-pages/op")
}

// directMeter measures the share of the payload a server read straight
// from the socket into values (reactor.Stats.DirectBytes: headers and bytes
// a read put where they did not belong included; the rest came through
// gnet's buffer), reported as direct-%.
type directMeter struct {
	s  *ipc.Service
	at uint64
}

func startDirectMeter(s *ipc.Service) directMeter {
	return directMeter{s, ipc.ReactorStats(s).DirectBytes}
}

func (m directMeter) report(b *testing.B, msgSize int) {
	b.ReportMetric(100*float64(ipc.ReactorStats(m.s).DirectBytes-m.at)/(float64(b.N)*float64(msgSize)), "direct-%")
}

// benchOneWayWindow sends the messages ms (all of one size, each used by
// one send at a time) one way, len(ms) of them under way at once: the next
// is sent when one has been received. It reports what benchOneWayMsg does.
func benchOneWayWindow[T any, P interface {
	*T
	ipc.Message
	payload() []byte
}](b *testing.B, ms []P, bufSize int, tweaks ...benchTweak) {
	msgSize := len(ms[0].payload())
	received := make(chan P, len(ms))
	server, client, addr := startOneWayPair(b, func(ctx ipc.Context, m P) { received <- m }, bufSize, tweaks)
	free := make(chan P, len(ms))
	for _, m := range ms {
		free <- m
	}
	failed := make(chan error, 1)
	// run sends n messages, len(ms) under way, and returns when all have
	// been received. A message goes back to free when it has been written.
	run := func(n int) {
		for i := 0; i < n+len(ms); i++ {
			if i >= len(ms) {
				<-received
			}
			if i >= n {
				continue
			}
			m := <-free
			if err := client.Send(addr, m, 0, func(err error) {
				if err != nil {
					select {
					case failed <- err:
					default:
					}
				}
				free <- m
			}); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case err := <-failed:
			b.Fatal(err)
		default:
		}
	}
	warm := warmHeap(b, len(ms)*msgSize, func() { run(len(ms)) })
	meter := startOneWayMeter(b, server, msgSize, warm)
	run(b.N)
	meter.report(b)
}

// streamMsg carries its payload as a stream field: the sender reads it from
// a source a buffer at a time and the receiver hands each chunk to a sink,
// so neither side holds the message in memory.
type streamMsg struct {
	src  io.Reader     // encoding
	sink *countingSink // decoding
}

func (m *streamMsg) Serde(v *serde.Visitor) {
	if v.Decoding() {
		if m.sink == nil {
			m.sink = &countingSink{}
		}
		v.StreamIn(m.sink)
		return
	}
	v.StreamOut(m.src)
}

type countingSink struct{ n int64 }

func (s *countingSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return len(p), nil }
func (s *countingSink) Close() error                { return nil }

// zeroReader yields n zero bytes without copying from anywhere.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := int64(len(p))
	if k > z.n {
		k = z.n
	}
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// BenchmarkOneWayStream64MiB is BenchmarkOneWay64MiB with the payload as a
// stream field; buffer=0 is the default BufferSize (4 KiB packets, 64 KiB
// between two ipcframe services).
func BenchmarkOneWayStream64MiB(b *testing.B) {
	for _, size := range []int{0, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("buffer=%d", size), func(b *testing.B) {
			benchOneWayStream(b, size, func(n int64) io.Reader { return &zeroReader{n: n} })
		})
	}
}

// BenchmarkOneWayStreamSource is BenchmarkOneWayStream64MiB/buffer=0 with
// a source that costs CPU per byte (pattern: the stream workload's
// generator and CRC-32C, hol.PatternReader; SHA-256 until the fifth
// session) or none (zeros), read on the event loop
// (loop) or on its own goroutine (async: ipc.AsyncSource). The receiver
// only counts, so the sender's loop is the part under test.
func BenchmarkOneWayStreamSource(b *testing.B) {
	for _, work := range []string{"zeros", "pattern"} {
		for _, async := range []bool{false, true} {
			b.Run(fmt.Sprintf("src=%s/read=%s", work, map[bool]string{false: "loop", true: "async"}[async]), func(b *testing.B) {
				benchOneWayStream(b, 0, func(n int64) io.Reader {
					var r io.Reader = &zeroReader{n: n}
					if work == "pattern" {
						r = hol.NewPatternReader(n)
					}
					if async {
						r = ipc.NewAsyncSource(r)
					}
					return r
				})
			})
		}
	}
}

// benchOneWayStream sends a 64 MiB stream field read from newSrc one way
// per op to a counting sink and reports the process's CPU time per GB.
func benchOneWayStream(b *testing.B, bufSize int, newSrc func(n int64) io.Reader) {
	const msgSize = 64 << 20
	received := make(chan int64, 1024)
	sp := ipc.NewProtocol()
	ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *streamMsg) { received <- m.sink.n })
	server := startBenchService(b, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", BufferSize: bufSize})
	cp := ipc.NewProtocol()
	ipc.MustRegister[streamMsg](cp, 1, nil)
	client := startBenchService(b, ipc.Config{Protocol: cp, BufferSize: bufSize})
	addr := server.Addr().String()
	sent := make(chan error, 1)
	b.SetBytes(msgSize)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := &streamMsg{src: newSrc(msgSize)}
		if err := client.Send(addr, m, 0, func(err error) { sent <- err }); err != nil {
			b.Fatal(err)
		}
		if err := <-sent; err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < b.N; i++ {
		if n := <-received; n != msgSize {
			b.Fatalf("received %d bytes", n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/(float64(b.N)*msgSize/1e9), "cpu-ms/GB")
}

// holWindow is the length of each measured window of BenchmarkHeadOfLine.
var holWindow = flag.Duration("hol.window", 2*time.Second, "BenchmarkHeadOfLine: length of each measured window")

// BenchmarkHeadOfLine measures head-of-line blocking as users write code:
// plain message types with a []byte field, callers on their own goroutines
// waiting on a channel, a zero Config. Small 1 KiB calls at concurrency 1
// and 16 run idle, then beside a flow of 16 MiB messages (echoed, or one
// way) on the same connection; the bulk flow is also measured alone. Run it
// once per sub-benchmark (-benchtime 1x); the metrics are the same-run
// ratios of internal/hol (targets: p99 ≤ 2x idle, calls ≥ 0.5x idle, bulk ≥
// 0.8x alone) and the absolute numbers behind them.
func BenchmarkHeadOfLine(b *testing.B) {
	for _, conc := range []int{1, 16} {
		for _, echo := range []bool{true, false} {
			kind := map[bool]string{true: "echo", false: "oneway"}[echo]
			b.Run(fmt.Sprintf("c=%d/bulk=%s", conc, kind), func(b *testing.B) {
				server := startBenchService(b, ipc.Config{Protocol: hol.ServerProtocol(), Listen: "127.0.0.1:0"})
				client := startBenchService(b, ipc.Config{Protocol: hol.ClientProtocol()})
				c := &hol.IPC{Svc: client, Addr: server.Addr().String(), BulkEcho: echo}
				var res hol.Result
				for range b.N {
					var err error
					res, err = hol.Run(context.Background(), c, hol.Options{Concurrency: conc, BulkEcho: echo, Window: *holWindow})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.Log(res)
				b.ReportMetric(float64(res.Idle.P99.Microseconds()), "idle-p99-µs")
				b.ReportMetric(float64(res.WithBulk.P99.Microseconds()), "bulk-p99-µs")
				b.ReportMetric(res.P99Ratio(), "p99-x")
				b.ReportMetric(res.CallsRatio(), "calls-x")
				b.ReportMetric(res.BulkAlone, "bulk-MB/s")
				b.ReportMetric(res.BulkRatio(), "bulk-x")
			})
		}
	}
}

// startBenchService starts a service for a benchmark and stops it when the
// benchmark ends.
func startBenchService(b *testing.B, cfg ipc.Config) *ipc.Service {
	b.Helper()
	s, err := ipc.NewService(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}
