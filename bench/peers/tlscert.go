package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
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
	if s := os.Getenv(tlsEnv); s != "" {
		m, err := parseTLSMaterial([]byte(s))
		if err != nil {
			fatalf("%s: %v", tlsEnv, err)
		}
		return m
	}
	ca := testcert.NewCA("peers bench CA")
	cert := ca.Issue(testcert.Leaf{})
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		fatalf("tls key: %v", err)
	}
	var b []byte
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})...)
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})...)
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})...)
	_ = os.Setenv(tlsEnv, string(b))
	return peerTLSMaterial{roots: ca.Pool, cert: cert}
})

// parseTLSMaterial reads what peerTLS exports.
func parseTLSMaterial(b []byte) (peerTLSMaterial, error) {
	var blocks []*pem.Block
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		blocks = append(blocks, blk)
	}
	if len(blocks) != 3 {
		return peerTLSMaterial{}, fmt.Errorf("want 3 PEM blocks, got %d", len(blocks))
	}
	ca, err := x509.ParseCertificate(blocks[0].Bytes)
	if err != nil {
		return peerTLSMaterial{}, err
	}
	key, err := x509.ParsePKCS8PrivateKey(blocks[2].Bytes)
	if err != nil {
		return peerTLSMaterial{}, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return peerTLSMaterial{roots: roots, cert: tls.Certificate{Certificate: [][]byte{blocks[1].Bytes}, PrivateKey: key}}, nil
}

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
