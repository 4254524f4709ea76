package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ipcframe/ipcframe/internal/testcert"
)

// With -tls both sides run TLS 1.3 (crypto/tls defaults: AES-GCM,
// X25519MLKEM768 key exchange, session resumption on) with a certificate
// made at run time: an ECDSA P-256 authority and a server certificate for
// "localhost" and 127.0.0.1, from internal/testcert. The embedded demo
// verifies the server against that authority; -twoproc hands the same
// certificates to its -serve child in the environment variable tlsEnv; a
// client started with -addr cannot know a separate server's certificate and
// skips verification (which only the handshake pays for). A -serve server
// with -tls makes its own certificate unless tlsEnv is set.

// tlsEnv passes the certificates to a -twoproc child: PEM blocks of the
// authority, the server certificate and its key.
const tlsEnv = "IPCFRAME_BENCH_TLS_PEM"

// errTLSLargeMode refuses -tls where it does not apply yet.
var errTLSLargeMode = errors.New("-tls applies to -mode echo and oneway")

// loadBenchCerts returns the run's authority pool and server certificate,
// from tlsEnv when set, else made now and exported to tlsEnv, so later
// calls and children get the same.
func loadBenchCerts() (*x509.CertPool, tls.Certificate, error) {
	return testcert.Shared(tlsEnv, "ipcframe bench CA")
}

// tlsConfigs returns the server configuration and the client's: verifying
// against the run's authority, or not at all when noVerify is set (a client
// of a separate server).
func tlsConfigs(noVerify bool) (server, client *tls.Config, err error) {
	roots, cert, err := loadBenchCerts()
	if err != nil {
		return nil, nil, fmt.Errorf("-tls: %w", err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}}
	client = &tls.Config{RootCAs: roots, InsecureSkipVerify: noVerify} // #nosec G402 -- only with -addr, see above
	return server, client, nil
}
