package main

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Ceilings: what plain std-net TCP does on one loopback connection in the
// same run, so that peer numbers can be read as a fraction of it.
//
//   - pingpong: the client writes 1 byte and reads 1 byte back; the server
//     echoes. Round trips per second and per-round-trip latency.
//   - stream: the client loops Write(64 KiB); the server reads with 256 KiB
//     reads and discards. Bytes counted at the server.

const (
	streamWriteSize = 64 << 10
	streamReadSize  = 256 << 10
)

// servePingPong starts the 1-byte echo server of the ping-pong ceiling.
func servePingPong(addr string) (string, func(), error) {
	return serveConns(addr, func(c net.Conn) {
		var b [1]byte
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			if _, err := c.Write(b[:]); err != nil {
				return
			}
		}
	})
}

// streamBytes counts bytes read by stream servers in this process.
var streamBytes atomic.Int64

// serveStream starts the discard server of the stream ceiling. In two-process
// mode the count lives in the child, so the child reports it (see twoproc.go).
func serveStream(addr string) (string, func(), error) {
	return serveConns(addr, func(c net.Conn) {
		buf := make([]byte, streamReadSize)
		for {
			n, err := c.Read(buf)
			streamBytes.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
}

// serveConns runs handle on each accepted connection until stop is called.
func serveConns(addr string, handle func(net.Conn)) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	return serveListener(ln, handle)
}

// serveListener runs handle on each connection ln accepts, each on its own
// goroutine, closing the connection when handle returns. stop closes ln
// and the open connections and waits for the handlers.
func serveListener(ln net.Listener, handle func(net.Conn)) (string, func(), error) {
	var (
		mu    sync.Mutex // guards conns
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	stop := func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
	return ln.Addr().String(), stop, nil
}

// PingPongResult is the 1-byte ping-pong ceiling.
type PingPongResult struct {
	Run     int     `json:"run"`
	RTs     int64   `json:"round_trips"`
	Seconds float64 `json:"seconds"`
	RTPS    float64 `json:"round_trips_per_s"`
	Latency
	OtherCPU float64 `json:"other_cpu"`
}

func runPingPong(addr string, warmup, dur time.Duration) (PingPongResult, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return PingPongResult{}, err
	}
	defer c.Close()
	h := hdrhistogram.New(histMin, histMax, histSigFigs)
	b := []byte{'x'}
	one := func() (time.Duration, error) {
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}
	end := time.Now().Add(warmup)
	for time.Now().Before(end) {
		if _, err := one(); err != nil {
			return PingPongResult{}, err
		}
	}
	runtime.GC()
	c0 := takeCost()
	t0 := time.Now()
	end = t0.Add(dur)
	for {
		d, err := one()
		if err != nil {
			return PingPongResult{}, err
		}
		h.RecordValue(max(int64(d), histMin))
		if time.Now().After(end) {
			break
		}
	}
	el := time.Since(t0).Seconds()
	other := costBetween(c0, takeCost(), 0).OtherCPU
	return PingPongResult{RTs: h.TotalCount(), Seconds: el, RTPS: float64(h.TotalCount()) / el, Latency: latencyOf(h), OtherCPU: other}, nil
}

// StreamResult is the plain TCP stream ceiling.
type StreamResult struct {
	Run     int     `json:"run"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	GBps    float64 `json:"gb_per_s"`
	// OtherCPU: see Cost.OtherCPU.
	OtherCPU float64 `json:"other_cpu"`
}

// runStream writes 64 KiB buffers to addr for warmup+dur (dur held longer
// while testHookWindowDone says so); counted is read at
// the start and the end of the measured window (it returns the bytes the
// server has read so far).
func runStream(addr string, warmup, dur time.Duration, counted func() (int64, error)) (StreamResult, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return StreamResult{}, err
	}
	buf := randomPayload(streamWriteSize)
	var stop atomic.Bool
	werr := make(chan error, 1)
	go func() {
		for !stop.Load() {
			if _, err := c.Write(buf); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	time.Sleep(warmup)
	b0, err := counted()
	if err != nil {
		return StreamResult{}, err
	}
	c0 := takeCost()
	t0 := time.Now()
	time.Sleep(dur)
	holdWindow(func() (int64, error) { // tests only: until the server read a byte
		b, err := counted()
		return b - b0, err
	})
	b1, err := counted()
	other := costBetween(c0, takeCost(), 0).OtherCPU
	el := time.Since(t0).Seconds()
	stop.Store(true)
	werr2 := <-werr
	c.Close()
	if err != nil {
		return StreamResult{}, err
	}
	if werr2 != nil {
		return StreamResult{}, fmt.Errorf("stream writer: %w", werr2)
	}
	n := b1 - b0
	return StreamResult{Bytes: n, Seconds: el, GBps: float64(n) / el / 1e9, OtherCPU: other}, nil
}
