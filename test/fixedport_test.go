package test

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fixedPortAddr returns a free loopback address whose port lies below the
// kernel's ephemeral range when that range leaves room. Tests that start a
// server on an address known in advance (after a restart, or after dialing
// it while nothing listened) use it: an ephemeral port could be taken
// meanwhile as the local port of any process's outgoing connection, and
// the server could not listen for as long as that connection lives.
// Otherwise (or if no such port is free) it returns an ephemeral port.
func fixedPortAddr(t testing.TB) string {
	t.Helper()
	lo := 0
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, _ = strconv.Atoi(f[0])
		}
	}
	const base = 20000
	for range 100 {
		port := 0
		if lo > base+1000 {
			port = base + rand.IntN(lo-base)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken: try another
		}
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}
