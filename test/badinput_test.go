package test

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// echoServer starts a server that echoes testmsg.Message requests and
// reports every connection's close error on stops.
func echoServer(t *testing.T) (*ipc.Service, <-chan error) {
	t.Helper()
	stops := make(chan error, 100)
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(ctx ipc.Context, m *testmsg.Message) { _ = ctx.Respond(m) })
	s := startService(t, ipc.Config{
		Protocol:       p,
		Listen:         "127.0.0.1:0",
		ConnectionStop: func(_ ipc.ConnInfo, err error) { stops <- err },
	})
	return s, stops
}

// echoOnce sends one request through client and requires its echo.
func echoOnce(t *testing.T, client *ipc.Service, addr string, idx int) {
	t.Helper()
	done := make(chan error, 1)
	require.NoError(t, ipc.SendRequest(client, addr, testmsg.New(idx, 3000), 0,
		func(req, resp *testmsg.Message, err error) {
			if err == nil {
				err = testmsg.Verify(resp, 3000)
			}
			done <- err
		}))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(deadline):
		t.Fatal("timed out waiting for an echo")
	}
}

func hdr(typ, flags byte, size int) []byte {
	return []byte{typ, flags, byte(size), byte(size >> 8)}
}

func packet(payload ...byte) []byte { return append(hdr(1, 0, len(payload)), payload...) }

// TestBadInputServer sends malformed bytes on raw sockets: each connection
// closes with its named error, nothing panics, and the server keeps serving
// other connections.
func TestBadInputServer(t *testing.T) {
	server, stops := echoServer(t)
	addr := server.Addr().String()
	clientProto := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](clientProto, 1, nil)
	client := startService(t, ipc.Config{Protocol: clientProto})

	random := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[0] = 0x7f // an invalid packet type, so the error is immediate

	emptyHeader := []byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x00} // flags, url, 4 ids: all zero
	newMsg := append([]byte{0x02, 0x00, byte(len(emptyHeader)), 0x00}, emptyHeader...)
	// Body of type 1 (testmsg.Message): Idx 0, then Str declaring 4 GiB.
	hugeBody := []byte{0x05, 0x00, 0x08, 0x00, 0x01, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x01}

	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"random bytes", random, ipc.ErrBadPacketHeader},
		{"unknown packet type", hdr(3, 0, 0), ipc.ErrBadPacketHeader},
		{"oversize length", hdr(1, 0x01, 5), ipc.ErrBadPacketHeader},
		{"unknown flag", hdr(1, 0x80, 0), ipc.ErrBadPacketHeader},
		{"keepalive with payload", append(hdr(2, 0, 1), 0), ipc.ErrBadPacketHeader},
		{"truncated frame", append(hdr(1, 0, 100), make([]byte, 10)...), ipc.ErrTruncated},
		{"unknown command", packet(0x0c), ipc.ErrBadCommand},
		// Window (docs/protocol.md §7b) from a peer that never sent the
		// hello: this server windows nothing for it.
		{"window before hello", packet(0x0a, 0x00, 0x00, 0x09, 0x10), ipc.ErrBadCommand},
		{"slot beyond limit", packet(0x02, 0x09, 0xc8, 0x01, 0x00, 0x00), ipc.ErrBadSlot},
		{"continuation on idle slot", packet(0x04, 0x00, 0x01, 0x00, 0x00), ipc.ErrBadSlot},
		{"chunk past packet", packet(0x02, 0x00, 0xff, 0x00, 0x00), ipc.ErrBadChunk},
		{"bad cross check", packet(0x02, 0x08, 0x00, 0x01, 0x00, 0x00), serde.ErrBadCross},
		{"huge declared string", packet(append(append([]byte{}, newMsg...), hugeBody...)...), serde.ErrLimit},
		{"unknown type id", packet(append(append([]byte{}, newMsg...), 0x05, 0x00, 0x01, 0x00, 0x63)...), ipc.ErrUnknownType},
		{"bad plain integer", packet(0x02, 0x00, 0x02, 0x00, 0x09, 0x00), serde.ErrIntOverflow},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer nc.Close()
			_, err = nc.Write(tc.in)
			require.NoError(t, err)
			require.NoError(t, nc.(*net.TCPConn).CloseWrite())
			select {
			case err := <-stops:
				require.ErrorIs(t, err, tc.want)
				require.ErrorIs(t, err, ipc.ErrProtocol)
				var ce *ipc.ConnError
				require.ErrorAs(t, err, &ce)
			case <-time.After(deadline):
				t.Fatal("the server did not close the connection")
			}
			// The server closed our socket.
			_ = nc.SetReadDeadline(time.Now().Add(deadline))
			_, err = io.Copy(io.Discard, nc)
			require.NoError(t, err)
			// And still serves others.
			echoOnce(t, client, addr, i)
		})
	}
}

// TestBadInputClient: a peer that answers requests with garbage closes the
// client's connection with a named error, and every pending request on it
// completes with an error.
func TestBadInputClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	const requests = 5
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		// Read all five requests (each ends with an EndMessage chunk in the
		// same packet as its header), then answer garbage.
		buf := make([]byte, 64<<10)
		got := 0
		for got < requests*testmsg.Size(100) {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			got += n
		}
		_, _ = nc.Write(packet(0x0c))
		_, _ = io.Copy(io.Discard, nc)
	}()

	stops := make(chan error, 10)
	p := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](p, 1, nil)
	client := startService(t, ipc.Config{Protocol: p, ConnectionStop: func(_ ipc.ConnInfo, err error) { stops <- err }})
	results := make(chan error, requests)
	for i := 0; i < requests; i++ {
		require.NoError(t, ipc.SendRequest(client, ln.Addr().String(), testmsg.New(i, 100), 0,
			func(req, resp *testmsg.Message, err error) { results <- err }))
	}
	for i := 0; i < requests; i++ {
		select {
		case err := <-results:
			require.ErrorIs(t, err, ipc.ErrConnection)
			require.ErrorIs(t, err, ipc.ErrBadCommand)
			var me *ipc.MessageError
			require.True(t, errors.As(err, &me))
			require.True(t, me.Started)
		case <-time.After(deadline):
			t.Fatalf("request %d never completed", i)
		}
	}
	select {
	case err := <-stops:
		require.ErrorIs(t, err, ipc.ErrBadCommand)
	case <-time.After(deadline):
		t.Fatal("no connection stop")
	}
}
