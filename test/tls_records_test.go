package test

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// tlsRecordMeter is an io.Writer that parses the TLS records of a byte
// stream as it passes and counts the application-data bytes, in all records
// and in full-size ones.
type tlsRecordMeter struct {
	mu         sync.Mutex // guards the fields below (the copying goroutine writes, the test reads)
	hdr        []byte     // the header of the next record, while incomplete
	left       int        // body bytes of the current record still to pass
	appData    int        // body bytes of application-data records
	appFull    int        // the same, in records of full size
	appRecords int        // application-data records
}

// tlsFullRecord is the body of a TLS 1.3 record carrying 16 KiB of
// plaintext: the plaintext, its content type byte and the AEAD tag.
const tlsFullRecord = 16384 + 1 + 16

func (m *tlsRecordMeter) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		if m.left > 0 {
			k := min(m.left, len(b))
			m.left -= k
			b = b[k:]
			continue
		}
		k := min(5-len(m.hdr), len(b))
		m.hdr = append(m.hdr, b[:k]...)
		b = b[k:]
		if len(m.hdr) < 5 {
			break
		}
		m.left = int(m.hdr[3])<<8 | int(m.hdr[4])
		if m.hdr[0] == 23 {
			m.appRecords++
			m.appData += m.left
			if m.left >= tlsFullRecord {
				m.appFull += m.left
			}
		}
		m.hdr = m.hdr[:0]
	}
	return n, nil
}

// TestTLSFullRecords: with the default 4 KiB BufferSize, a large message
// crosses the wire in full-size TLS records (the writer hands the record
// layer whole batches of packets, not one packet per record), so the
// per-record costs of encryption and of the peer's reads are paid once per
// 16 KiB. A proxy between client and server parses the client's records.
func TestTLSFullRecords(t *testing.T) {
	const size = 1 << 20
	tt := newTestTLS(t)
	server, _, _ := tlsEchoServer(t, ipc.Config{TLSServer: tt.server})
	meter := &tlsRecordMeter{}
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
	meter.mu.Lock()
	defer meter.mu.Unlock()
	require.GreaterOrEqual(t, meter.appData, size, "the message crossed the proxy")
	require.GreaterOrEqual(t, meter.appFull*10, meter.appData*9,
		"%d of %d application-data bytes in full records (%d records)", meter.appFull, meter.appData, meter.appRecords)
}
