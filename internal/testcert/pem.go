package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// PEM encodes ca's certificate and cert (its first certificate and its
// key) as three PEM blocks, so that another process can trust ca and serve
// cert (ParsePEM).
func (ca *CA) PEM(cert tls.Certificate) ([]byte, error) {
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, err
	}
	var b []byte
	for _, blk := range []*pem.Block{
		{Type: "CERTIFICATE", Bytes: ca.Cert.Raw},
		{Type: "CERTIFICATE", Bytes: cert.Certificate[0]},
		{Type: "PRIVATE KEY", Bytes: key},
	} {
		b = append(b, pem.EncodeToMemory(blk)...)
	}
	return b, nil
}

// ParsePEM reads what PEM wrote: a pool holding the authority, and the
// certificate with its key.
func ParsePEM(b []byte) (*x509.CertPool, tls.Certificate, error) {
	var der [][]byte
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		der = append(der, blk.Bytes)
	}
	if len(der) != 3 {
		return nil, tls.Certificate{}, fmt.Errorf("testcert: want 3 PEM blocks, got %d", len(der))
	}
	ca, err := x509.ParseCertificate(der[0])
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("testcert: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der[2])
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("testcert: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, tls.Certificate{Certificate: [][]byte{der[1]}, PrivateKey: key}, nil
}

// Shared returns an authority pool and a server certificate (Leaf
// defaults) that a process and the children it starts afterwards agree on:
// parsed from the environment variable env when it is set, else made now
// (authority named name) and exported to env as PEM.
func Shared(env, name string) (*x509.CertPool, tls.Certificate, error) {
	if s := os.Getenv(env); s != "" {
		pool, cert, err := ParsePEM([]byte(s))
		if err != nil {
			return nil, tls.Certificate{}, fmt.Errorf("%s: %w", env, err)
		}
		return pool, cert, nil
	}
	ca := NewCA(name)
	cert := ca.Issue(Leaf{})
	b, err := ca.PEM(cert)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	if err := os.Setenv(env, string(b)); err != nil {
		return nil, tls.Certificate{}, err
	}
	return ca.Pool, cert, nil
}
