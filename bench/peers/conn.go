package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The conn workload measures TLS connection setup: one goroutine opens a
// new connection, makes one -size echo call on it and closes it, again and
// again, for the warm-up and then -duration. It runs twice per peer: full
// handshakes (session tickets off) and resumed ones (one client session
// cache shared by every connection: TLS 1.3 PSK resumption, no certificate
// signature or verification). Every connection's ConnectionState says
// whether it resumed; the share is reported. crypto/tls over std net
// (stdtls, a goroutine per connection) is the ceiling, measured in the same
// run; plain ipcframe, when selected, runs the full mode without TLS, so
// that TLS's share of ipcframe's connection cost shows.

// connector is implemented by the TLS peers (ipcframe-tls, grpc-tls) and
// by plain ipcframe (full mode only, without TLS: what a connection costs
// before TLS).
type connector interface {
	// Connector returns connect, which opens one new connection to addr,
	// makes one echo call of payload on it, closes it and reports whether
	// its TLS handshake resumed a session, and done, which releases what
	// the connections share. With resume, connections share one client
	// session cache; without, session tickets are off.
	Connector(addr string, resume bool) (connect func(ctx context.Context, payload []byte) (resumed bool, err error), done func(), err error)
}

// connTimeout bounds one connection's setup, call and close.
const connTimeout = 30 * time.Second

// ConnResult is one conn-workload measurement of one peer.
type ConnResult struct {
	Peer   string `json:"peer"`
	Resume bool   `json:"resume"`
	Size   int    `json:"size"`
	Run    int    `json:"run"`
	Conns  int64  `json:"conns"`
	// PerSec is connections (handshakes) per second.
	PerSec float64 `json:"per_s"`
	// ResumedShare is the share of measured connections whose handshake
	// resumed a session (0..1).
	ResumedShare float64 `json:"resumed_share"`
	Latency
	Cost
	Err string `json:"err,omitempty"`
}

// runConn measures connect for warmup (at least one connection) and then
// dur (at least two), one connection at a time.
func runConn(connect func(context.Context, []byte) (bool, error), payload []byte, warmup, dur time.Duration) (ConnResult, error) {
	once := func() (bool, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), connTimeout)
		defer cancel()
		t0 := time.Now()
		resumed, err := connect(ctx, payload)
		return resumed, time.Since(t0), err
	}
	// At least one warm-up connection, however late this goroutine runs:
	// with a session cache it primes the cache, so that every measured
	// handshake resumes (TestConnWorkload asserts all of them do).
	for end := time.Now().Add(warmup); ; {
		if _, _, err := once(); err != nil {
			return ConnResult{}, err
		}
		if !time.Now().Before(end) {
			break
		}
	}
	runtime.GC()
	h := hdrhistogram.New(histMin, histMax, histSigFigs)
	var n, resumed int64
	c0 := takeCost()
	t0 := time.Now()
	for time.Since(t0) < dur || n < 2 {
		r, d, err := once()
		if err != nil {
			return ConnResult{}, err
		}
		n++
		if r {
			resumed++
		}
		h.RecordValue(min(int64(d), histMax))
	}
	elapsed := time.Since(t0)
	return ConnResult{
		Size:         len(payload),
		Conns:        n,
		PerSec:       float64(n) / elapsed.Seconds(),
		ResumedShare: float64(resumed) / float64(n),
		Latency:      latencyOf(h),
		Cost:         costBetween(c0, takeCost(), n),
	}, nil
}

// runConns runs the conn workload for the std ceiling and every selected
// peer that implements connector (the TLS peers, and plain ipcframe in full
// mode as a reference), full then resumed, and adds the results to rep.
func runConns(rep *Report, o options, sys []System, run int, settle func(), logf func(string, ...any)) {
	payload := randomPayload(o.size)
	names := []string{stdTLSName}
	for _, s := range sys {
		if _, ok := s.(connector); ok {
			names = append(names, s.Name())
		}
	}
	for _, name := range names {
		for _, resume := range []bool{false, true} {
			settle()
			r, err := withServer(name, o.twoProc, func(s *runningServer) (ConnResult, error) {
				connect, done, err := connectorFor(name, s.addr, resume)
				if err != nil {
					return ConnResult{}, err
				}
				defer done()
				return runConn(connect, payload, o.warmup, o.duration)
			})
			r.Peer, r.Resume, r.Size, r.Run = name, resume, o.size, run
			mode := "full"
			if resume {
				mode = "resumed"
			}
			if errors.Is(err, errUnsupported) {
				continue // plain ipcframe has no resumed mode
			}
			if err != nil {
				r.Err = err.Error()
				logf("conn %s %s: %v", name, mode, err)
			} else {
				logf("conn %s %s: %.0f/s p50 %s, %.0f%% resumed", name, mode, r.PerSec, fmtUS(r.P50US), 100*r.ResumedShare)
			}
			rep.Conn = append(rep.Conn, r)
			runtime.GC()
		}
	}
}

// connectorFor returns the connect function of the named peer.
func connectorFor(name, addr string, resume bool) (func(context.Context, []byte) (bool, error), func(), error) {
	if name == stdTLSName {
		return stdTLSConnector(addr, resume)
	}
	c, ok := systems[name].(connector)
	if !ok {
		return nil, nil, fmt.Errorf("%s: %w", name, errUnsupported)
	}
	return c.Connector(addr, resume)
}

// sessionCache returns a fresh client session cache when resume is set,
// else nil (tlsClientConfig then disables tickets).
func sessionCache(resume bool) tls.ClientSessionCache {
	if resume {
		return tls.NewLRUClientSessionCache(0)
	}
	return nil
}

// stdTLSName is the std crypto/tls echo server of the conn workload (a
// server name for -serve, not a peer).
const stdTLSName = "stdtls"

// serveStdTLS is a crypto/tls echo server over std net, a goroutine per
// connection.
func serveStdTLS(addr string) (string, func(), error) {
	ln, err := tls.Listen("tcp", addr, tlsServerConfig())
	if err != nil {
		return "", nil, err
	}
	return serveListener(ln, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// stdTLSConnector dials with crypto/tls, writes payload, reads the echo and
// closes.
func stdTLSConnector(addr string, resume bool) (func(context.Context, []byte) (bool, error), func(), error) {
	cfg := tlsClientConfig(sessionCache(resume))
	var reply []byte
	connect := func(ctx context.Context, payload []byte) (bool, error) {
		d := tls.Dialer{Config: cfg}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err
		}
		defer nc.Close()
		c := nc.(*tls.Conn)
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		if _, err := c.Write(payload); err != nil {
			return false, err
		}
		if cap(reply) < len(payload) {
			reply = make([]byte, len(payload))
		}
		reply = reply[:len(payload)]
		if _, err := io.ReadFull(c, reply); err != nil {
			return false, err
		}
		return c.ConnectionState().DidResume, nil
	}
	return connect, func() {}, nil
}

// errNoResumeInfo reports a connection whose TLS state could not be read.
var errNoResumeInfo = errors.New("no TLS state for the connection")
