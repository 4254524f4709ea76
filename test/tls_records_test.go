package test

import (
	"io"
	"net"
	"testing"

	"github.com/ipcframe/ipcframe/internal/tlsrecords"
	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// TestTLSFullRecords: with the default 4 KiB BufferSize, a large message
// crosses the wire in full-size TLS records (the writer hands the record
// layer whole batches of packets, not one packet per record), so the
// per-record costs of encryption and of the peer's reads are paid once per
// 16 KiB. A proxy between client and server parses the client's records.
//
// The reactor makes every record of a Write full except the Write's last,
// however the batch is cut into pieces (a packet header before a borrowed
// value: reactor.TestTLSWriteFullRecords), so the short records are the
// tails of batches (64 KiB each, or shorter when the writer runs out of
// output) and the packets of other messages (window credit, keepalive).
// Measured: 98.2-98.4 % of the bytes in full records; encrypting piece by
// piece gave 75-77 % whenever the pump borrowed (a flaky failure), one
// packet per record gives 0 %.
func TestTLSFullRecords(t *testing.T) {
	const size = 1 << 20
	tt := newTestTLS(t)
	server, _, _ := tlsEchoServer(t, ipc.Config{TLSServer: tt.server})
	meter := &tlsrecords.Meter{}
	proxy := newTCPProxy(t, server.Addr().String())
	proxy.start(func(in net.Conn) {
		out, ok := proxy.dialTarget(in)
		if !ok {
			return
		}
		proxy.goServe(func() { _, _ = io.Copy(in, out); in.Close() })
		_, _ = io.Copy(io.MultiWriter(out, meter), in)
		out.Close()
	})
	client, _ := tlsClient(t, ipc.Config{TLSClient: tt.client})
	kaEcho(t, client, proxy.addr(), 1, size) // keepalive_test.go
	sizes := meter.Sizes()
	appData, appFull := 0, 0
	for _, n := range sizes {
		appData += n
		if n >= tlsrecords.FullBody {
			appFull += n
		}
	}
	require.GreaterOrEqual(t, appData, size, "the message crossed the proxy")
	require.GreaterOrEqual(t, appFull*10, appData*9,
		"%d of %d application-data bytes in full records (%d records: %v)", appFull, appData, len(sizes), sizes)
}
