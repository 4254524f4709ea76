package test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcframe/ipcframe/ipc"
	"github.com/stretchr/testify/require"
)

// A DNS server in the test process for ipc.SRVResolver: a net.Resolver
// whose Dial returns one end of a net.Pipe served by dnsZone (the Go
// resolver then speaks DNS over TCP framing, RFC 7766), so no socket and
// no system resolver is involved.

// dnsRR is one resource record: its type and encoded data.
type dnsRR struct {
	typ   uint16
	rdata []byte
}

const (
	dnsTypeA   = 1
	dnsTypeSRV = 33
)

// dnsZone maps fully qualified lower-case names ("a.test.") to records.
type dnsZone map[string][]dnsRR

func (z dnsZone) a(name string, ip string) {
	b := netip.MustParseAddr(ip).As4()
	z[name] = append(z[name], dnsRR{dnsTypeA, b[:]})
}

func (z dnsZone) srv(name string, prio, weight, port uint16, target string) {
	d := binary.BigEndian.AppendUint16(nil, prio)
	d = binary.BigEndian.AppendUint16(d, weight)
	d = binary.BigEndian.AppendUint16(d, port)
	z[name] = append(z[name], dnsRR{dnsTypeSRV, dnsName(d, target)})
}

// dnsName appends name in wire form (labels, uncompressed).
func dnsName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// resolver returns a net.Resolver answered by z.
func (z dnsZone) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go z.serve(server)
		return client, nil
	}}
}

// serve answers length-prefixed queries on c until it closes.
func (z dnsZone) serve(c net.Conn) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		resp := z.answer(q)
		if resp == nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// answer builds the response to query q: the records of the asked name
// and type, NXDOMAIN for a name the zone does not hold.
func (z dnsZone) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i, name := 12, ""
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		name += strings.ToLower(string(q[i+1:i+1+l])) + "."
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	rrs, known := z[name]
	var ans []dnsRR
	for _, rr := range rrs {
		if rr.typ == qtype {
			ans = append(ans, rr)
		}
	}
	flags := uint16(0x8000 | 0x0400 | 0x0100 | 0x0080) // QR, AA, RD, RA
	if !known {
		flags |= 3 // NXDOMAIN
	}
	r := append([]byte(nil), q[0], q[1])
	r = binary.BigEndian.AppendUint16(r, flags)
	r = binary.BigEndian.AppendUint16(r, 1)
	r = binary.BigEndian.AppendUint16(r, uint16(len(ans)))
	r = append(r, 0, 0, 0, 0)
	r = append(r, question...)
	for _, rr := range ans {
		r = append(r, 0xC0, 12) // the question's name
		r = binary.BigEndian.AppendUint16(r, rr.typ)
		r = binary.BigEndian.AppendUint16(r, 1)
		r = binary.BigEndian.AppendUint32(r, 60)
		r = binary.BigEndian.AppendUint16(r, uint16(len(rr.rdata)))
		r = append(r, rr.rdata...)
	}
	return r
}

// TestSRVResolver: SRVResolver answers each SRV target's addresses with the
// record's port, in priority order, falls back to the host's addresses
// with the name's port when there is no SRV record, and a client whose
// pool name has SRV records reaches the server they name.
func TestSRVResolver(t *testing.T) {
	server := startService(t, ipc.Config{Protocol: plEchoProto(nil), Listen: "127.0.0.1:0"})
	_, portS, err := net.SplitHostPort(server.Addr().String())
	require.NoError(t, err)
	port, err := strconv.Atoi(portS)
	require.NoError(t, err)
	closedPort := 1 // nothing listens on loopback port 1 here; only listed second

	z := dnsZone{}
	z.srv("_ipc._tcp.orders.test.", 20, 0, uint16(closedPort), "b.orders.test.")
	z.srv("_ipc._tcp.orders.test.", 10, 0, uint16(port), "a.orders.test.")
	z.a("a.orders.test.", "127.0.0.1")
	z.a("b.orders.test.", "127.0.0.2")
	z.a("plain.test.", "10.231.250.9")
	r := ipc.SRVResolver{Service: "ipc", Proto: "tcp", Resolver: z.resolver()}

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	got, err := r.Resolve(ctx, "orders.test:9")
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:" + portS, "127.0.0.2:" + strconv.Itoa(closedPort)}, got, "priority order, each record's port")

	got, err = r.Resolve(ctx, "plain.test:7000")
	require.NoError(t, err)
	require.Equal(t, []string{"10.231.250.9:7000"}, got, "no SRV record: the host's address, the name's port")

	_, err = r.Resolve(ctx, "missing.test:7000")
	var de *net.DNSError
	require.ErrorAs(t, err, &de)
	require.True(t, de.IsNotFound)

	_, err = r.Resolve(ctx, "no-port.test")
	require.ErrorIs(t, err, ipc.ErrBadName)

	client := startService(t, ipc.Config{Protocol: plClientProto(), Resolver: r})
	kaEcho(t, client, "orders.test:9", 0, 100)
	st, ok := client.PoolStats("orders.test:9")
	require.True(t, ok)
	require.Equal(t, []string{"127.0.0.1:" + portS, "127.0.0.2:" + strconv.Itoa(closedPort)}, st.Addresses)
	require.Equal(t, uint64(1), server.Stats().Connections.Accepted)
}
