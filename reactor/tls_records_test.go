package reactor

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/tlsrecords"
	"github.com/stretchr/testify/require"
)

// recordConn is a net.Conn that parses the TLS records it reads.
type recordConn struct {
	net.Conn
	m tlsrecords.Meter
}

func (c *recordConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	_, _ = c.m.Write(b[:n])
	return n, err
}

// TestTLSWriteFullRecords: one Write of several pieces (a packet header
// before a value's own bytes, pieces that end off a record boundary)
// yields full-size records except the last one, the same for a Write of
// one piece, and the bytes arrive exact. Every tls.Conn.Write ends a
// record, so encrypting piece by piece would cut a record at each
// piece's end.
func TestTLSWriteFullRecords(t *testing.T) {
	const plain = tlsRecordPlain
	scfg, ccfg := tlsPair(t)
	scfg.SessionTicketsDisabled = true // no ticket records among the data
	pieces := [][]byte{make([]byte, 8), make([]byte, 65528), make([]byte, 5), make([]byte, 40000), make([]byte, 3)}
	single := make([]byte, 20000)
	var payload []byte
	for _, p := range append(pieces, single) {
		_, _ = rand.Read(p)
		payload = append(payload, p...)
	}
	wrote := make(chan error, 1)
	h := &testHandler{open: func(c *Conn) {
		err := c.Write(pieces...)
		if err == nil {
			err = c.Write(single)
		}
		wrote <- err
	}}
	r := startReactor(t, Config{Loops: 1, TLS: TLSConfig{Server: scfg}}, h)
	raw, err := net.Dial("tcp", r.Addr().String())
	require.NoError(t, err)
	rc := &recordConn{Conn: raw}
	nc := tls.Client(rc, ccfg)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(waitLong)))
	got := make([]byte, len(payload))
	_, err = io.ReadFull(nc, got)
	require.NoError(t, err)
	require.NoError(t, <-wrote)
	require.True(t, bytes.Equal(payload, got), "bytes differ")

	// A TLS 1.3 record's body: the plaintext, its content type, the tag.
	body := func(n int) int { return n + 1 + 16 }
	first := 8 + 65528 + 5 + 40000 + 3
	var want []int
	for n := first; n > 0; n -= plain {
		want = append(want, body(min(n, plain)))
	}
	want = append(want, body(plain), body(20000-plain))
	sizes := rc.m.Sizes()
	// The handshake's encrypted flight comes first, in records of the same
	// outer type.
	require.GreaterOrEqual(t, len(sizes), len(want))
	require.Equal(t, want, sizes[len(sizes)-len(want):], "application-data record bodies in order")
}
