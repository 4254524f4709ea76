package reactor

import (
	"context"
	"crypto/tls"
	"testing"
)

// BenchmarkTLSHandshake measures TLS 1.3 handshakes per second through the
// reactor (DialTLS to a reactor TLS server on loopback, P-256 ECDSA
// certificate), full and resumed (a primed ClientSessionCache); each op
// dials, waits for OnOpen on both sides, and aborts the connection.
func BenchmarkTLSHandshake(b *testing.B) {
	for _, resumed := range []bool{false, true} {
		name := "full"
		if resumed {
			name = "resumed"
		}
		b.Run(name, func(b *testing.B) { benchHandshake(b, resumed) })
	}
}

func benchHandshake(b *testing.B, resumed bool) {
	scfg, ccfg := tlsPair(b)
	opened := make(chan struct{}, 1)
	server := startReactor(b, Config{Loops: 1, TLS: TLSConfig{Server: scfg}},
		&testHandler{open: func(*Conn) { opened <- struct{}{} }})
	closed := make(chan struct{}, 1)
	client := startReactor(b, Config{Loops: 1}, &testHandler{closed: func(*Conn, error) { closed <- struct{}{} }})
	if resumed {
		ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	dial := func() *Conn {
		c, err := client.DialTLS(context.Background(), server.Addr().String(), ccfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		<-opened
		return c
	}
	// Prime the cache (the ticket arrives after the handshake): dial until
	// a connection resumes.
	for primed := !resumed; !primed; {
		c := dial()
		st, _ := c.TLSConnectionState()
		primed = st.DidResume
		c.Close(nil)
		<-closed
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := dial()
		if st, _ := c.TLSConnectionState(); st.DidResume != resumed {
			b.Fatalf("DidResume %v", st.DidResume)
		}
		c.Abort(nil)
		<-closed
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}
