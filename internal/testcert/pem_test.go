package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPEMRoundTrip: a certificate passed through PEM and ParsePEM serves
// a TLS handshake that a client trusting the parsed pool verifies.
func TestPEMRoundTrip(t *testing.T) {
	ca := NewCA("pem CA")
	b, err := ca.PEM(ca.Issue(Leaf{}))
	require.NoError(t, err)
	pool, cert, err := ParsePEM(b)
	require.NoError(t, err)
	handshake(t, pool, cert)

	_, _, err = ParsePEM(b[:len(b)/2])
	require.Error(t, err)
}

// TestShared: the first call makes and exports the material, a later one
// (a child process, here this one) reads the same certificate back.
func TestShared(t *testing.T) {
	const env = "TESTCERT_SHARED_PEM"
	t.Setenv(env, "")
	pool, cert, err := Shared(env, "shared CA")
	require.NoError(t, err)
	require.NotEmpty(t, os.Getenv(env))
	pool2, cert2, err := Shared(env, "shared CA")
	require.NoError(t, err)
	require.Equal(t, cert.Certificate, cert2.Certificate)
	handshake(t, pool, cert2)
	handshake(t, pool2, cert)
}

// handshake runs a TLS handshake over a pipe: a server with cert, a client
// verifying "localhost" against pool.
func handshake(t *testing.T, pool *x509.CertPool, cert tls.Certificate) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}})
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	require.NoError(t, tls.Client(b, &tls.Config{RootCAs: pool, ServerName: "localhost"}).Handshake())
	require.NoError(t, <-done)
}
