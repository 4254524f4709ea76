package ipc_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/internal/testcert"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
)

// benchTweak adjusts a benchmark's server and client Config (TLS,
// compression).
type benchTweak func(server, client *ipc.Config)

// startBenchPair starts a server and a client after applying tweaks.
func startBenchPair(b *testing.B, server, client ipc.Config, tweaks []benchTweak) (*ipc.Service, *ipc.Service) {
	b.Helper()
	for _, t := range tweaks {
		t(&server, &client)
	}
	return startBenchService(b, server), startBenchService(b, client)
}

// benchTLS returns a server and a client tls.Config for 127.0.0.1.
func benchTLS() (server, client *tls.Config) {
	ca := testcert.NewCA("bench CA")
	return &tls.Config{Certificates: []tls.Certificate{ca.Issue(testcert.Leaf{})}},
		&tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}
}

func withTLS(server, client *ipc.Config) {
	server.TLSServer, client.TLSClient = benchTLS()
}

// BenchmarkTLSOneWay64MiB is BenchmarkOneWay64MiB over TLS (AES-GCM,
// TLS 1.3); compare with BenchmarkStdTLSOneWay64MiB in the same run.
func BenchmarkTLSOneWay64MiB(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("buffer=%d", size), func(b *testing.B) { benchOneWay(b, 64<<20, size, withTLS) })
	}
}

// BenchmarkTLSOneWay64MiBPlain is BenchmarkOneWay64MiBPlain over TLS: a
// plain []byte field (plainMsg, not Recyclable: every message decodes into
// a new array) and a zero Config apart from TLS and size limits. Compare
// with BenchmarkStdTLSOneWay64MiB in the same run.
func BenchmarkTLSOneWay64MiBPlain(b *testing.B) {
	benchOneWayMsg(b, &plainMsg{Data: make([]byte, 64<<20)}, 0, withTLS)
}

// BenchmarkStdTLSOneWay64MiB is the reference: crypto/tls over std net, a
// goroutine per side, 64 MiB per op written in 256 KiB writes and read into
// a 256 KiB buffer (no framing: a ceiling for any message engine).
func BenchmarkStdTLSOneWay64MiB(b *testing.B) {
	scfg, ccfg := benchTLS()
	benchStdOneWay(b, func() (net.Listener, error) { return tls.Listen("tcp", "127.0.0.1:0", scfg) },
		func(addr string) (net.Conn, error) { return tls.Dial("tcp", addr, ccfg) }, stdHot)
}

// BenchmarkStdTCPOneWay64MiB is BenchmarkStdTLSOneWay64MiB without TLS: with
// it, TLS's own cost in crypto/tls over std net (std TLS minus std TCP) can
// be set against ipcframe's (BenchmarkTLSOneWay64MiB minus
// BenchmarkOneWay64MiB) in the same run.
func BenchmarkStdTCPOneWay64MiB(b *testing.B) {
	benchStdOneWay(b, func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
		func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }, stdHot)
}

// BenchmarkStdTCPOneWay64MiBArray is BenchmarkStdTCPOneWay64MiB with the
// receiver reading each 64 MiB into a new []byte of its own (make, then
// io.ReadFull): the kernel copies each byte once, into a new array that
// make has zeroed (runtime.memclrNoHeapPointers; the page faults of fresh
// memory are set-up only). ipcframe's decoder allocates its arrays without
// zeroing, so this is not a floor for it.
func BenchmarkStdTCPOneWay64MiBArray(b *testing.B) {
	benchStdOneWay(b, func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
		func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }, stdArray)
}

// BenchmarkStdTCPOneWay64MiBCold is BenchmarkStdTCPOneWay64MiB moving a
// real 64 MiB value on each side: the sender writes 256 KiB pieces of one
// 64 MiB array and the receiver reads into another 64 MiB array, both
// reused, so the kernel reads and writes memory the size of a message
// (out of cache) as any engine carrying a 64 MiB []byte must, where the
// reused-buffer reference touches only 256 KiB on each side (in cache).
// Nothing is allocated or zeroed: it is the floor of the memory traffic.
func BenchmarkStdTCPOneWay64MiBCold(b *testing.B) {
	benchStdOneWay(b, func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
		func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }, stdCold)
}

// BenchmarkStdTCPOneWay64MiBZeros is BenchmarkStdTCPOneWay64MiB with the
// sender reading each 256 KiB from the zero source of
// BenchmarkOneWayStream64MiB (zeroReader, which clears the buffer) before
// writing it: the raw stream doing the same work as the engine's stream
// field benchmark, whose source's cost the plain reference leaves out.
func BenchmarkStdTCPOneWay64MiBZeros(b *testing.B) {
	benchStdOneWay(b, func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
		func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }, stdZeros)
}

// stdMemory is how benchStdOneWay's ends hold the bytes they move.
type stdMemory int

const (
	stdHot   stdMemory = iota // one 256 KiB buffer per side, reused
	stdArray                  // the receiver makes a 64 MiB array per message
	stdCold                   // one 64 MiB array per side, reused
	stdZeros                  // as stdHot, the sender's buffer filled by a zeroReader
)

// benchStdOneWay sends 64 MiB per op from a dialed std connection to an
// accepted one, a goroutine per side, in 256 KiB writes; the ends hold the
// bytes as mem says. Like benchOneWayMsg it warms the heap before the timer
// and reports faults/op and warm-msgs.
func benchStdOneWay(b *testing.B, listen func() (net.Listener, error), dial func(addr string) (net.Conn, error), mem stdMemory) {
	const msg, chunk = 64 << 20, 256 << 10
	ln, err := listen()
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if mem != stdHot {
			v := make([]byte, msg)
			for {
				if mem == stdArray {
					v = make([]byte, msg)
				}
				if _, err := io.ReadFull(c, v); err != nil {
					return
				}
				got <- 1
			}
		}
		buf := make([]byte, chunk)
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			for n >= msg {
				n -= msg
				got <- 1
			}
			if err != nil {
				return
			}
		}
	}()
	c, err := dial(ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	src := make([]byte, chunk)
	if mem == stdCold {
		src = make([]byte, msg)
	}
	one := func() {
		z := zeroReader{n: msg}
		for off := 0; off < msg; off += chunk {
			if mem == stdZeros {
				_, _ = z.Read(src)
			}
			if _, err := c.Write(src[off%len(src):][:chunk]); err != nil {
				b.Fatal(err)
			}
		}
		<-got
	}
	// The same warm-up as the engine's benchmarks (warmHeap): the
	// connection, the arrays' first touch and the heap's growth are set-up.
	warm := warmHeap(b, msg, one)
	b.SetBytes(msg)
	cpu0 := cpuTime()
	faults := startFaultMeter()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		one()
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/(float64(b.N)*msg/1e9), "cpu-ms/GB")
	faults.report(b)
	b.ReportMetric(float64(warm), "warm-msgs")
}

// BenchmarkTLSEcho is BenchmarkEcho over TLS: 1 KiB round trips at
// concurrency 1, 64 and 1024 on one connection.
func BenchmarkTLSEcho(b *testing.B) {
	for _, conc := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) { benchEcho(b, conc, 1024, withTLS) })
	}
}

// BenchmarkCompression sends 1 MiB messages one way (as
// BenchmarkOneWay64MiB) of JSON-like or random bytes, snappy on or off, at
// the default 4 KiB BufferSize. MB/s is the payload rate; cpu-ms/GB is the process's CPU
// time (client and server, user + system) per GB of payload.
func BenchmarkCompression(b *testing.B) {
	const size = 1 << 20
	for _, data := range []struct {
		name string
		b    []byte
	}{{"json", testmsg.JSONLike(size)}, {"random", testmsg.Random(size)}} {
		for _, on := range []bool{false, true} {
			name := fmt.Sprintf("%s/snappy=%v", data.name, on)
			b.Run(name, func(b *testing.B) {
				var tweaks []benchTweak
				if on {
					tweaks = append(tweaks, func(s, c *ipc.Config) { s.Compression, c.Compression = compress.Snappy{}, compress.Snappy{} })
				}
				benchOneWayData(b, data.b, 0, tweaks...)
			})
		}
	}
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
