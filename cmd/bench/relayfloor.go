package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// The kernel's floor for a relay (-mode relay -relay-floor): a plain TCP
// stream from this process to a sink in this process, direct and through a
// forwarder in the relay node's process that does nothing but move bytes,
// in the same run as ipcframe's one-way load. The forwarder either reads
// and writes through a 64 KiB buffer (two copies through user space, as
// any relay that looks at the bytes) or moves them with splice(2) (socket
// to pipe to socket, page references, no copy through user space; Go's
// net.TCPConn.ReadFrom). The ratios bound what a relay on the same
// machine can reach: ipcframe's relay reads and writes every byte too, and
// does more besides (docs/benchmarks.md, "Relay, sixth session").

// floorModes are the forwarder's modes, in the order they are measured.
var floorModes = [...]string{"rw", "splice"}

// RelayFloor is the raw TCP stream direct and through the forwarder in
// each mode: MB/s, the forwarder's CPU time per GB (10^9 bytes) moved, and
// this process's (the writer and the sink) per GB.
type RelayFloor struct {
	DirectMBps         float64 `json:"direct_mb_per_sec"`
	DirectEndsCPUPerGB float64 `json:"direct_ends_cpu_sec_per_gb"`
	// Through the forwarder, in floorModes' order.
	Forwarded []RelayFloorHop `json:"forwarded"`
}

// RelayFloorHop is the raw stream through the forwarder in one mode.
type RelayFloorHop struct {
	Mode          string  `json:"mode"` // "rw" or "splice"
	MBps          float64 `json:"mb_per_sec"`
	Ratio         float64 `json:"ratio"` // / RelayFloor.DirectMBps
	FwdCPUPerGB   float64 `json:"forwarder_cpu_sec_per_gb"`
	EndsCPUPerGB  float64 `json:"ends_cpu_sec_per_gb"`
	TotalCPUPerGB float64 `json:"total_cpu_sec_per_gb"`
}

// floorBuffer is the size of every raw read and write: the forwarder's
// buffer, the writer's and the sink's.
const floorBuffer = 64 << 10

// serveFloor accepts forwarder connections on ln until it is closed. A
// connection starts with one line, "<mode> <host:port>\n"; the forwarder
// dials the address and moves everything that follows to it.
func serveFloor(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go forward(c.(*net.TCPConn))
	}
}

// forward serves one forwarder connection (serveFloor).
func forward(src *net.TCPConn) {
	defer src.Close()
	line, err := readLine(src)
	if err != nil {
		return
	}
	mode, addr, _ := strings.Cut(line, " ")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	dst := c.(*net.TCPConn)
	defer dst.Close()
	if mode == "splice" {
		_, _ = dst.ReadFrom(src) // splice(2) between TCP sockets on Linux
	} else {
		// Wrapped, so that io.CopyBuffer cannot use ReadFrom (splice).
		_, _ = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, floorBuffer))
	}
	_ = dst.CloseWrite()
}

// readLine reads up to '\n' one byte at a time, so that nothing after it is
// taken from c.
func readLine(c io.Reader) (string, error) {
	var b [1]byte
	var s []byte
	for len(s) < 300 {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			return string(s), nil
		}
		s = append(s, b[0])
	}
	return "", errors.New("forwarder: header line too long")
}

// floorSink counts what each accepted connection delivers until its end.
type floorSink struct {
	ln   net.Listener
	got  chan int64 // one total per connection, at its EOF
	once sync.Once
}

func startFloorSink() (*floorSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &floorSink{ln: ln, got: make(chan int64, 1)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, floorBuffer))
				s.got <- n
			}()
		}
	}()
	return s, nil
}

func (s *floorSink) close() { s.once.Do(func() { _ = s.ln.Close() }) }

// floorStream writes to addr for d (after header, if any; and while
// testHookWindowDone, if set, holds the window, asked with the writes made
// and no samples) and returns the bytes the sink counted and the time
// until it had them all.
func floorStream(ctx context.Context, s *floorSink, addr, header string, d time.Duration) (int64, time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	if header != "" {
		if _, err := io.WriteString(c, header); err != nil {
			return 0, 0, err
		}
	}
	buf := make([]byte, floorBuffer)
	start := time.Now()
	var writes int64
	var over time.Time // when the window's time was up (zero: not yet)
	done := func() bool {
		now := time.Now()
		if now.Sub(start) < d {
			return false
		}
		if over.IsZero() {
			over = now
		}
		return testHookWindowDone == nil || testHookWindowDone(writes, 0, now.Sub(over))
	}
	for !done() && ctx.Err() == nil {
		if _, err := c.Write(buf); err != nil {
			return 0, 0, err
		}
		writes++
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, 0, err
	}
	select {
	case n := <-s.got:
		return n, time.Since(start), nil
	case <-ctx.Done():
		return 0, 0, context.Cause(ctx)
	}
}

// runFloor measures the raw stream direct and through the forwarder at
// fwdAddr (in the relay node, process pid), for d each, and prints it.
func runFloor(ctx context.Context, w io.Writer, fwdAddr string, pid int, d time.Duration) (*RelayFloor, error) {
	s, err := startFloorSink()
	if err != nil {
		return nil, err
	}
	defer s.close()
	fl := &RelayFloor{}
	self0 := processCPU()
	n, el, err := floorStream(ctx, s, s.ln.Addr().String(), "", d)
	if err != nil {
		return nil, fmt.Errorf("raw stream direct: %w", err)
	}
	gb := float64(n) / 1e9
	fl.DirectMBps = ratio(float64(n)/1e6, el.Seconds())
	fl.DirectEndsCPUPerGB = ratio((processCPU() - self0).Seconds(), gb)
	fmt.Fprintf(w, "raw TCP floor: direct %.0f MB/s, %.2f CPU s/GB", fl.DirectMBps, fl.DirectEndsCPUPerGB)
	for _, mode := range floorModes {
		cpu0, err := childCPU(pid)
		if err != nil {
			return nil, err
		}
		self0 := processCPU()
		n, el, err := floorStream(ctx, s, fwdAddr, mode+" "+s.ln.Addr().String()+"\n", d)
		if err != nil {
			return nil, fmt.Errorf("raw stream through the %s forwarder: %w", mode, err)
		}
		cpu1, err := childCPU(pid)
		if err != nil {
			return nil, err
		}
		gb := float64(n) / 1e9
		h := RelayFloorHop{Mode: mode, MBps: ratio(float64(n)/1e6, el.Seconds())}
		h.Ratio = ratio(h.MBps, fl.DirectMBps)
		h.FwdCPUPerGB = ratio((cpu1 - cpu0).Seconds(), gb)
		h.EndsCPUPerGB = ratio((processCPU() - self0).Seconds(), gb)
		h.TotalCPUPerGB = h.FwdCPUPerGB + h.EndsCPUPerGB
		fl.Forwarded = append(fl.Forwarded, h)
		fmt.Fprintf(w, "; %s forwarder %.0f MB/s = %.2fx, forwarder %.2f + ends %.2f = %.2f CPU s/GB",
			mode, h.MBps, h.Ratio, h.FwdCPUPerGB, h.EndsCPUPerGB, h.TotalCPUPerGB)
	}
	fmt.Fprintln(w)
	return fl, nil
}

// listenFloor starts the forwarder of a relay node started with
// -relay-floor and returns its address.
func listenFloor() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go serveFloor(ln)
	return ln.Addr().String(), func() { _ = ln.Close() }, nil
}

// floorAddr splits the relay node's first line, "<ipc addr>[ <forwarder
// addr>]".
func floorAddr(line string) (relay, fwd string) {
	relay, fwd, _ = strings.Cut(line, " ")
	return relay, fwd
}
