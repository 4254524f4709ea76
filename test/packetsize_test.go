package test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/ipcframe/ipcframe/serde"
	"github.com/stretchr/testify/require"
)

// packetMeter parses the packet headers of one direction of a connection
// as its bytes pass and records the largest payload.
type packetMeter struct {
	hdr  [4]byte
	hn   int // header bytes collected
	left int // payload bytes of the current packet still to pass

	mu      sync.Mutex // guards largest
	largest int
}

func (m *packetMeter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if m.left > 0 {
			k := min(m.left, len(p))
			m.left, p = m.left-k, p[k:]
			continue
		}
		k := copy(m.hdr[m.hn:], p)
		m.hn, p = m.hn+k, p[k:]
		if m.hn < len(m.hdr) {
			continue
		}
		// Type, flags (bit 0: the 17th bit of the size), size (LE16).
		m.left, m.hn = int(binary.LittleEndian.Uint16(m.hdr[2:]))|int(m.hdr[1]&1)<<16, 0
		m.mu.Lock()
		m.largest = max(m.largest, m.left)
		m.mu.Unlock()
	}
	return n, nil
}

func (m *packetMeter) max() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.largest
}

// TestLargePacketsToIPCFramePeers: a client with the default BufferSize
// writes packets of up to 64 KiB once the server's window hello arrived
// (every ipcframe reader takes them); with BufferSize set, or to a server
// that sends no hello (as a C++ SolidFrame peer), it keeps to BufferSize.
// A proxy between them parses the client's packet headers. The 1 MiB
// srBlob (slowreader_test.go)
// request must come back intact either way.
func TestLargePacketsToIPCFramePeers(t *testing.T) {
	const size = 1 << 20
	for _, tc := range []struct {
		name         string
		clientBuffer int
		serverWindow int
		largest      int // the largest client packet payload
	}{
		{"default", 0, 0, 65536 - 4},
		{"buffer_set", 4096, 0, 4096 - 4},
		{"peer_without_hello", 0, -1, 4096 - 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := ipc.NewProtocol()
			ipc.MustRegister(sp, 1, func(ctx ipc.Context, m *srBlob) { _ = ctx.Respond(m) })
			lim := serde.Limits{MaxString: 2 * size}
			server := startService(t, ipc.Config{Protocol: sp, Listen: "127.0.0.1:0", Limits: lim, MessageWindow: tc.serverWindow})
			meter := &packetMeter{}
			proxy := newTCPProxy(t, server.Addr().String())
			proxy.start(func(in net.Conn) {
				out, ok := proxy.dialTarget(in)
				if !ok {
					return
				}
				proxy.goServe(func() { _, _ = io.Copy(io.MultiWriter(out, meter), in); out.Close() })
				_, _ = io.Copy(in, out)
				in.Close()
			})
			cp := ipc.NewProtocol()
			ipc.MustRegister[srBlob](cp, 1, nil)
			client := startService(t, ipc.Config{Protocol: cp, Limits: lim, BufferSize: tc.clientBuffer})
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			// A first call: the server's hello, its first packet, has
			// arrived when the answer has.
			_, err := ipc.Call[srBlob, srBlob](ctx, client, proxy.addr(), &srBlob{Data: []byte("hi")}, 0)
			require.NoError(t, err)
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i * 7)
			}
			resp, err := ipc.Call[srBlob, srBlob](ctx, client, proxy.addr(), &srBlob{Data: data}, 0)
			require.NoError(t, err)
			require.Equal(t, data, resp.Data, "echoed intact")
			require.Equal(t, tc.largest, meter.max())
		})
	}
}
