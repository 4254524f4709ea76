package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// tcpSystem is the floor for whole-message delivery: a length-prefixed frame
// written with one writev and read by the server into a reused buffer with
// io.ReadFull, then acknowledged with an empty frame. Calls on one client are
// serialised by a mutex, so it runs only in the bulk workload (concurrency 1).
type tcpSystem struct{}

func init() { register(tcpSystem{}) }

func (tcpSystem) Name() string { return "tcp" }
func (tcpSystem) bulkOnly()    {}

// Frame header: kind byte, then the body length as a little-endian uint64.
const (
	tcpHeaderLen = 9
	tcpKindEcho  = 1
	tcpKindSink  = 2
	tcpMaxBody   = 1 << 30
)

func (tcpSystem) Serve(addr string) (string, func(), error) {
	return serveConns(addr, tcpServeConn)
}

func tcpServeConn(c net.Conn) {
	defer c.Close()
	var hdr [tcpHeaderLen]byte
	var body []byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.LittleEndian.Uint64(hdr[1:])
		if n > tcpMaxBody {
			return
		}
		if uint64(cap(body)) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		var out net.Buffers
		switch hdr[0] {
		case tcpKindEcho:
			out = net.Buffers{hdr[:], body}
		case tcpKindSink:
			binary.LittleEndian.PutUint64(hdr[1:], 0)
			out = net.Buffers{hdr[:]}
		default:
			return
		}
		if _, err := out.WriteTo(c); err != nil {
			return
		}
	}
}

func (tcpSystem) Dial(addr string) (Client, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &tcpClient{c: c}, nil
}

type tcpClient struct {
	mu sync.Mutex // serialises calls; guards hdr
	c  net.Conn
	// hdr is reused for the request and the reply header.
	hdr [tcpHeaderLen]byte
}

func (t *tcpClient) roundTrip(kind byte, payload []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hdr[0] = kind
	binary.LittleEndian.PutUint64(t.hdr[1:], uint64(len(payload)))
	out := net.Buffers{t.hdr[:], payload}
	if _, err := out.WriteTo(t.c); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(t.c, t.hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(t.hdr[1:])
	if n > tcpMaxBody {
		return nil, errors.New("tcp: reply too large")
	}
	if n == 0 {
		return nil, nil
	}
	resp := make([]byte, n)
	if _, err := io.ReadFull(t.c, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (t *tcpClient) Call(_ context.Context, payload []byte) ([]byte, error) {
	return t.roundTrip(tcpKindEcho, payload)
}

func (t *tcpClient) Sink(_ context.Context, payload []byte) error {
	resp, err := t.roundTrip(tcpKindSink, payload)
	if err == nil && len(resp) != 0 {
		err = fmt.Errorf("tcp: sink reply has %d bytes", len(resp))
	}
	return err
}

func (t *tcpClient) Close() error { return t.c.Close() }
