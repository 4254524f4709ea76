package main

import (
	"crypto/tls"
	"crypto/x509"
	"sync"

	"github.com/ipcframe/ipcframe/internal/testcert"
)

// The TLS peers (ipcframe-tls, grpc-tls and the std crypto/tls ceiling of
// the conn workload) all use one certificate authority and one server
// certificate (ECDSA P-256, for "localhost" and 127.0.0.1), made at run time
// by internal/testcert. A -twoproc child gets the same material from its
// parent through the environment variable tlsEnv (PEM: the authority, the
// server certificate, its key), so both sides agree without files.

// tlsEnv names the environment variable that passes the certificates to a
// child process.
const tlsEnv = "IPCFRAME_PEERS_TLS_PEM"

// tlsServerName is the name clients verify.
const tlsServerName = "localhost"

// peerTLSMaterial is the shared authority and server certificate.
type peerTLSMaterial struct {
	roots *x509.CertPool
	cert  tls.Certificate
}

// peerTLS returns the shared material: from tlsEnv when a parent set it,
// else made now and exported to tlsEnv for children started later.
var peerTLS = sync.OnceValue(func() peerTLSMaterial {
	roots, cert, err := testcert.Shared(tlsEnv, "peers bench CA")
	if err != nil {
		fatalf("tls: %v", err)
	}
	return peerTLSMaterial{roots: roots, cert: cert}
})

// tlsServerConfig is a server configuration with the shared certificate
// (crypto/tls defaults otherwise: TLS 1.3, session tickets on).
func tlsServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{peerTLS().cert}}
}

// tlsClientConfig is a client configuration trusting the shared authority.
// cache nil disables session tickets (every handshake is full); a shared
// cache lets later handshakes resume.
func tlsClientConfig(cache tls.ClientSessionCache) *tls.Config {
	cfg := &tls.Config{RootCAs: peerTLS().roots, ServerName: tlsServerName, ClientSessionCache: cache}
	if cache == nil {
		cfg.SessionTicketsDisabled = true
	}
	return cfg
}
