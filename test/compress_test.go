package test

import (
	"crypto/rand"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/ipcframe/ipcframe/compress"
	"github.com/ipcframe/ipcframe/internal/testmsg"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// countingSnappy is snappy that counts the compressions it is asked for
// and those it kept.
type countingSnappy struct {
	compress.Snappy
	tries, kept *atomic.Int64
}

func (c countingSnappy) Compress(dst, src []byte) (int, bool) {
	c.tries.Add(1)
	n, ok := c.Snappy.Compress(dst, src)
	if ok {
		c.kept.Add(1)
	}
	return n, ok
}

// TestCompressionBadInput: a compressed packet declaring more than 64 KiB
// (a decompression bomb) and a corrupt one each close only their
// connection, with ErrCompression and the codec's named cause.
func TestCompressionBadInput(t *testing.T) {
	server, _, stops := tlsEchoServer(t, ipc.Config{Compression: compress.Snappy{}})
	addr := server.Addr().String()
	client, _ := tlsClient(t, ipc.Config{Compression: compress.Snappy{}})
	echoOnce(t, client, addr, 0)
	for _, tc := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"bomb", snappy.Encode(nil, make([]byte, 1<<20)), compress.ErrTooLarge},
		{"corrupt", []byte{0x80, 0x02, 0xff, 0xff, 0xff, 0xff}, compress.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer nc.Close()
			_, err = nc.Write(append(hdr(1, 0x02, len(tc.payload)), tc.payload...))
			require.NoError(t, err)
			err = stops.waitFor(t, tc.want, 1)[0]
			require.ErrorIs(t, err, ipc.ErrCompression)
			require.ErrorIs(t, err, ipc.ErrProtocol)
			echoOnce(t, client, addr, 1)
		})
	}
}

// TestCompressionBackoff: a client sending 1 MiB messages of random bytes
// tries to compress only a few of its packets (the back-off), every
// message arrives intact, and compressible messages sent afterwards are
// compressed again once a probe finds them compressible.
func TestCompressionBackoff(t *testing.T) {
	var tries, kept atomic.Int64
	codec := countingSnappy{tries: &tries, kept: &kept}
	got := make(chan []byte, 8)
	p := ipc.NewProtocol()
	ipc.MustRegister(p, 1, func(_ ipc.Context, m *testmsg.Message) { got <- m.Str })
	server := startService(t, ipc.Config{Protocol: p, Listen: "127.0.0.1:0", Compression: compress.Snappy{}})
	cp := ipc.NewProtocol()
	ipc.MustRegister[testmsg.Message](cp, 1, nil)
	client := startService(t, ipc.Config{Protocol: cp, Compression: codec, BufferSize: 16 << 10, WriteBatch: 64 << 10})
	addr := server.Addr().String()

	send := func(b []byte) {
		t.Helper()
		require.NoError(t, client.Send(addr, &testmsg.Message{Str: b}, 0, nil))
		select {
		case r := <-got:
			require.Equal(t, b, r)
		case <-time.After(deadline):
			t.Fatal("message not delivered")
		}
	}
	const size = 1 << 20
	packets := size / (16 << 10) // at least this many packets per message
	for range 4 {
		random := make([]byte, size)
		_, _ = rand.Read(random)
		send(random)
	}
	require.Zero(t, kept.Load(), "random data never compresses")
	require.Less(t, tries.Load(), int64(4*packets/4), "the back-off skips most random packets: %d tries for %d packets", tries.Load(), 4*packets)

	json := make([]byte, 0, size)
	for i := 0; len(json) < size; i++ {
		json = fmt.Appendf(json, `{"id":%d,"name":"user-%d","active":true,"tags":["a","b"]},`, i, i%97)
	}
	json = json[:size]
	// A probe finds the data compressible within DefaultBackoffMax (256)
	// packets, four messages; from then on every packet is compressed.
	for range 5 {
		send(json)
	}
	before := kept.Load()
	send(json)
	require.GreaterOrEqual(t, kept.Load()-before, int64(packets), "every packet of the last message was compressed")
}
